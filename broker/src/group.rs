//! Consumer groups: members share a topic's partitions, one owner per partition at a time,
//! and resume from the group's committed offsets.
//!
//! Kafka's group protocol in miniature: every join or leave increases the group's
//! *generation* and recomputes the assignment (balanced, and sticky: a partition stays with its
//! owner when the balance allows). A member notices a new generation on its next receive,
//! drops the partitions it lost and starts the ones it gained at their committed offset.
//!
//! Commits are fenced by *tenure*: a member's ownership of a partition, from the generation
//! that gave it the partition for as long as it keeps it. A commit is accepted only under the
//! tenure its records were read in, so a member that lost a partition cannot move its
//! committed offset any more, not even after it gets the partition back (it then resumes
//! from the group's committed offset, under a new tenure). A rebalance that leaves a
//! partition with its owner does not end the tenure: commits go on being accepted. A commit
//! below where the member began reading under its current tenure is refused too
//! ([`CommitError::Stale`]), so a position kept from before a loss cannot move the group's
//! offset back either; to rewind on purpose, seek first.

use std::future::poll_fn;
use std::time::{Duration, Instant};

use crate::assignment::{self, AssignmentChange, Holdings};
use crate::batch::{self, BatchReader};
use crate::config::Start;
use crate::cursor::{Cursor, CursorSet, SetStep};
use crate::error::{CommitError, RecvError, RecvTimeoutError, SeekError, TryRecvError};
use crate::group_state::GroupState;
use crate::notify::Wake;
use crate::record::{OwnedRecord, Position, Record};
use crate::sync::{Arc, Ordering, lock, next_id};
use crate::topic_state::TopicState;
use crate::wait::{Readable, block_step, poll_step, try_step};

/// A consumer group of a topic. Cheap to clone.
pub struct Group<T> {
    topic: Arc<TopicState<T>>,
    shared: Arc<GroupState>,
}

impl<T> Clone for Group<T> {
    fn clone(&self) -> Self {
        Self {
            topic: Arc::clone(&self.topic),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> std::fmt::Debug for Group<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("topic", &self.topic.name)
            .field("name", &self.shared.name)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl<T> Group<T> {
    pub(crate) fn new(topic: Arc<TopicState<T>>, shared: Arc<GroupState>) -> Self {
        Self { topic, shared }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Joins the group: the group rebalances, and the new member owns its share of the
    /// partitions, resuming each from the committed offset. Leaving is dropping the member
    /// (or [`GroupMember::leave`]).
    ///
    /// After [`Broker::close`](crate::Broker::close) the member is not counted and owns
    /// nothing: its receives return [`RecvError::Closed`] at once.
    pub fn join(&self) -> GroupMember<T> {
        let id = next_id();
        let joined = self.shared.join(id);
        GroupMember {
            core: MemberCore {
                group: self.clone(),
                id,
            },
            joined,
            generation: 0,
            set: CursorSet::new(Vec::new()),
            tenures: Vec::new(),
            reported: Vec::new(),
            reported_generation: 0,
        }
    }

    /// The generation: increases on every join and leave.
    pub fn generation(&self) -> u64 {
        // Acquire: pairs with the Release in `change_members`.
        self.shared.generation.load(Ordering::Acquire)
    }

    /// How many members the group has.
    pub fn members(&self) -> usize {
        lock(&self.shared.inner).members.len()
    }

    /// The committed offset of `partition`: the next offset the group will read there.
    pub fn committed(&self, partition: u32) -> Option<u64> {
        self.shared
            .committed
            .get(partition as usize)
            // Acquire: pairs with the Release in `commit_offset`.
            .map(|c| c.load(Ordering::Acquire))
    }

    /// Records appended, still kept, and not yet committed by the group, per partition
    /// (records removed by retention before the group committed them are not counted).
    pub fn lag(&self) -> Vec<u64> {
        self.topic
            .partitions
            .iter()
            .zip(self.shared.committed.iter())
            // Acquire: pairs with the Release in `GroupState::commit`.
            .map(|(part, committed)| part.lag_from(committed.load(Ordering::Acquire)))
            .collect()
    }

    fn commit_offset(
        &self,
        member: u64,
        tenure: Option<u64>,
        partition: u32,
        offset: u64,
    ) -> Result<(), CommitError> {
        let Some(part) = self.topic.partitions.get(partition as usize) else {
            return Err(CommitError::NoSuchPartition {
                partition,
                partitions: self.topic.partitions.len() as u32,
            });
        };
        let Some(tenure) = tenure else {
            return Err(CommitError::NotOwner {
                partition,
                generation: self.generation(),
            });
        };
        self.shared.commit(member, tenure, part, offset)
    }
}

/// What a [`GroupRecord`] needs to commit itself.
struct MemberCore<T> {
    group: Group<T>,
    id: u64,
}

/// A member of a consumer group: reads the partitions it owns.
///
/// Dropping it leaves the group, which rebalances its partitions to the other members; they
/// resume from the committed offsets (so records read but not committed are read again:
/// at-least-once).
pub struct GroupMember<T> {
    core: MemberCore<T>,
    /// Whether it is a member (it joined before the broker closed, and has not left).
    joined: bool,
    /// The generation `set` was built for.
    generation: u64,
    set: CursorSet<T>,
    /// The tenure (see the module docs) under which each cursor of `set` reads.
    tenures: Vec<Tenure>,
    /// What the last assignment change reported by `recv_event` said the member owns, and
    /// the generation it checked last.
    reported: Holdings,
    reported_generation: u64,
}

/// A member's tenure of one partition.
#[derive(Debug, Clone, Copy)]
struct Tenure {
    /// The generation it began in.
    since: u64,
    /// The lowest offset the member has read from (or sought to) under it: every record it
    /// read under this tenure is at or after it.
    from: u64,
}

impl<T> std::fmt::Debug for GroupMember<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember")
            .field("group", &self.core.group.shared.name)
            .field("generation", &self.generation)
            .field("assignment", &self.assignment())
            .finish_non_exhaustive()
    }
}

impl<T> Readable for GroupMember<T> {
    fn deferred(&mut self) -> Option<SetStep> {
        self.set.take_deferred()
    }

    fn step(&mut self) -> SetStep {
        if !self.joined {
            return SetStep::Closed;
        }
        self.sync();
        self.set.step()
    }

    fn register(&mut self, wake: &Wake) {
        self.set
            .register(wake, Some(&self.core.group.shared.rebalance));
    }

    fn unregister(&mut self) {
        self.set.unregister(Some(&self.core.group.shared.rebalance));
    }
}

/// A member read through `recv_event`: an assignment change not yet reported comes before the
/// next record.
struct Events<'m, T>(&'m mut GroupMember<T>);

impl<T> Readable for Events<'_, T> {
    fn deferred(&mut self) -> Option<SetStep> {
        self.0.set.take_deferred()
    }

    fn step(&mut self) -> SetStep {
        let member = &mut *self.0;
        if !member.joined {
            return SetStep::Closed;
        }
        member.sync();
        if member.unreported_change() {
            return SetStep::Reassigned;
        }
        member.set.step()
    }

    fn register(&mut self, wake: &Wake) {
        self.0.register(wake);
    }

    fn unregister(&mut self) {
        self.0.unregister();
    }
}

impl<T> BatchReader<T> for GroupMember<T> {
    fn cursors(&mut self) -> &mut CursorSet<T> {
        &mut self.set
    }
}

impl<T> GroupMember<T> {
    /// Adopts the current assignment if the generation changed.
    fn sync(&mut self) {
        let shared = &self.core.group.shared;
        // Acquire: pairs with the Release in `change_members`.
        if shared.generation.load(Ordering::Acquire) == self.generation {
            return;
        }
        self.set.unregister(Some(&shared.rebalance));
        let inner = lock(&shared.inner);
        let me = Some(self.core.id);
        // A cursor goes on only under the same tenure; a partition lost and regained since
        // resumes from the committed offset, not from where this member had read to.
        let mut kept: Vec<(Cursor<T>, Tenure)> = std::mem::take(&mut self.set.cursors)
            .into_iter()
            .zip(std::mem::take(&mut self.tenures))
            .filter(|(c, tenure)| {
                let p = c.partition() as usize;
                inner.owners[p] == me && inner.tenure[p] == tenure.since
            })
            .collect();
        for (partition, owner) in inner.owners.iter().enumerate() {
            if *owner == me
                && !kept
                    .iter()
                    .any(|(c, _)| c.partition() as usize == partition)
            {
                let part = Arc::clone(&self.core.group.topic.partitions[partition]);
                // Acquire: pairs with the Release in `GroupState::commit`.
                let offset = shared.committed[partition].load(Ordering::Acquire);
                let cursor = Cursor::untracked_at(part, offset);
                let tenure = Tenure {
                    since: inner.tenure[partition],
                    from: cursor.position(),
                };
                kept.push((cursor, tenure));
            }
        }
        kept.sort_by_key(|(c, _)| c.partition());
        (self.set.cursors, self.tenures) = kept.into_iter().unzip();
        self.generation = inner.generation;
    }

    /// What the member owns now: `(partition, generation its tenure began in)`.
    fn holdings(&self) -> Holdings {
        self.set
            .cursors
            .iter()
            .zip(&self.tenures)
            .map(|(c, t)| (c.partition(), t.since))
            .collect()
    }

    /// Whether the member's partitions changed since `recv_event` last reported them (one
    /// comparison of generations when the group did not rebalance).
    fn unreported_change(&mut self) -> bool {
        if self.generation == self.reported_generation {
            return false;
        }
        if self.holdings() == self.reported {
            // The group rebalanced without touching this member.
            self.reported_generation = self.generation;
            return false;
        }
        true
    }

    /// Reports the change `unreported_change` found, and marks it reported.
    fn take_change(&mut self) -> AssignmentChange {
        let now = self.holdings();
        let change = assignment::change(self.generation, &self.reported, &now);
        self.reported = now;
        self.reported_generation = self.generation;
        change
    }

    fn event(&mut self, step: SetStep) -> Result<MemberEvent<'_, T>, TryRecvError> {
        if step == SetStep::Reassigned {
            return Ok(MemberEvent::Assigned(self.take_change()));
        }
        self.finish(step).map(MemberEvent::Record)
    }

    /// Waits for the next event: a change of this member's partitions, or else a record.
    ///
    /// A change (the first assignment after joining, and every rebalance that gives this
    /// member partitions or takes some away) comes before any record read under the new
    /// assignment, so that per-partition state can be set up or dropped in time. Changes
    /// adopted silently in between (by [`recv`](Self::recv), [`refresh`](Self::refresh) or
    /// another receive) are reported by the next call, merged into one; records those
    /// receives returned came before the report, so receive with this method alone where
    /// the order matters.
    ///
    /// Cancel-safe, as [`recv`](Self::recv) is.
    ///
    /// ```
    /// use broker::{Broker, MemberEvent, TopicConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let jobs = Broker::new().topic::<u32>("jobs", TopicConfig::new().partitions(2))?;
    /// jobs.producer().send_to_blocking(1, 7)?;
    /// let group = jobs.group("workers")?;
    /// let mut a = group.join();
    /// let MemberEvent::Assigned(change) = a.recv_event_blocking()? else { unreachable!() };
    /// assert_eq!(change.assigned, [0, 1]);
    ///
    /// let b = group.join(); // a rebalance: `a` keeps partition 0, `b` gets partition 1
    /// let MemberEvent::Assigned(change) = a.recv_event_blocking()? else { unreachable!() };
    /// assert_eq!((change.partitions, change.revoked), (vec![0], vec![1]));
    ///
    /// drop(b); // partition 1 comes back, from its committed offset
    /// let MemberEvent::Assigned(change) = a.recv_event_blocking()? else { unreachable!() };
    /// assert_eq!(change.assigned, [1]);
    /// let MemberEvent::Record(record) = a.recv_event_blocking()? else { unreachable!() };
    /// assert_eq!((record.partition(), *record.value()), (1, 7));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv_event(&mut self) -> Result<MemberEvent<'_, T>, RecvError> {
        let step = poll_fn(|cx| poll_step(&mut Events(self), cx)).await;
        self.event(step).map_err(TryRecvError::into_waiting)
    }

    /// Blocking [`recv_event`](Self::recv_event).
    pub fn recv_event_blocking(&mut self) -> Result<MemberEvent<'_, T>, RecvError> {
        let step = block_step(&mut Events(self), None).expect("no deadline");
        self.event(step).map_err(TryRecvError::into_waiting)
    }

    /// Blocking [`recv_event`](Self::recv_event) that waits at most `timeout`.
    pub fn recv_event_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<MemberEvent<'_, T>, RecvTimeoutError> {
        match block_step(&mut Events(self), Some(Instant::now() + timeout)) {
            None => Err(RecvTimeoutError::Timeout),
            Some(step) => self
                .event(step)
                .map_err(|e| RecvTimeoutError::Recv(e.into_waiting())),
        }
    }

    /// [`recv_event`](Self::recv_event) without waiting: [`TryRecvError::Empty`] if there is
    /// neither a change to report nor a record now.
    pub fn try_recv_event(&mut self) -> Result<MemberEvent<'_, T>, TryRecvError> {
        let step = try_step(&mut Events(self));
        self.event(step)
    }

    /// Waits for the next record of the partitions this member owns. A member that owns no
    /// partition waits until a rebalance gives it some.
    ///
    /// Cancel-safe: dropping the future before it completes loses no record.
    pub async fn recv(&mut self) -> Result<GroupRecord<'_, T>, RecvError> {
        let step = poll_fn(|cx| poll_step(self, cx)).await;
        self.finish(step).map_err(TryRecvError::into_waiting)
    }

    /// Blocks the thread until the next record.
    pub fn recv_blocking(&mut self) -> Result<GroupRecord<'_, T>, RecvError> {
        let step = block_step(self, None).expect("no deadline");
        self.finish(step).map_err(TryRecvError::into_waiting)
    }

    /// Blocks the thread until the next record or until `timeout` passes.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<GroupRecord<'_, T>, RecvTimeoutError> {
        match block_step(self, Some(Instant::now() + timeout)) {
            None => Err(RecvTimeoutError::Timeout),
            Some(step) => self
                .finish(step)
                .map_err(|e| RecvTimeoutError::Recv(e.into_waiting())),
        }
    }

    /// The next record if one is available now.
    pub fn try_recv(&mut self) -> Result<GroupRecord<'_, T>, TryRecvError> {
        let step = try_step(self);
        self.finish(step)
    }

    fn finish(&self, step: SetStep) -> Result<GroupRecord<'_, T>, TryRecvError> {
        match step {
            SetStep::Ready(i) => {
                let cursor = &self.set.cursors[i];
                let (entry, offset) = cursor.last();
                Ok(GroupRecord {
                    record: Record::new(entry, cursor.partition(), offset),
                    member: &self.core,
                    tenure: self.tenures[i].since,
                })
            }
            SetStep::Empty => Err(TryRecvError::Empty),
            SetStep::Lagged { partition, skipped } => {
                Err(TryRecvError::Lagged { partition, skipped })
            }
            SetStep::Closed => Err(TryRecvError::Closed),
            SetStep::Reassigned => unreachable!("reported by `event`"),
        }
    }

    /// Commits everything up to and including the record at `position`: the group resumes
    /// after it.
    ///
    /// Refused with [`CommitError::NotOwner`] unless this member owns the partition and has
    /// owned it since its last receive adopted the assignment, and with
    /// [`CommitError::Stale`] if `position` is below where this member began reading the
    /// partition under its current ownership: see the module docs (a member that lost the
    /// partition, even if it got it back, cannot commit what it read before).
    pub fn commit(&self, position: Position) -> Result<(), CommitError> {
        self.commit_offset(position.partition, position.offset + 1)
    }

    /// Commits `next_offset` as the next offset the group reads in `partition` (Kafka's
    /// meaning of a committed offset). Refused as [`commit`](Self::commit) is; to move the
    /// group back past where this member began reading, [`seek`](Self::seek) there first.
    pub fn commit_offset(&self, partition: u32, next_offset: u64) -> Result<(), CommitError> {
        let tenure = self
            .set
            .cursors
            .iter()
            .position(|c| c.partition() == partition)
            .map(|i| self.tenures[i]);
        if let Some(tenure) = tenure
            && next_offset < tenure.from
        {
            return Err(CommitError::Stale {
                partition,
                offset: next_offset,
                from: tenure.from,
            });
        }
        self.core.group.commit_offset(
            self.core.id,
            tenure.map(|t| t.since),
            partition,
            next_offset,
        )
    }

    /// Moves this member's reading position in an owned partition (the committed offset does
    /// not move until the next commit).
    pub fn seek(&mut self, partition: u32, start: Start) -> Result<(), SeekError> {
        self.sync();
        let partitions = self.core.group.topic.partitions.len() as u32;
        if partition >= partitions {
            return Err(SeekError::NoSuchPartition {
                partition,
                partitions,
            });
        }
        let i = self
            .set
            .cursors
            .iter()
            .position(|c| c.partition() == partition)
            .ok_or(SeekError::NotAssigned { partition })?;
        self.set.forget_deferred();
        self.set.cursors[i].seek(start)?;
        let tenure = &mut self.tenures[i];
        tenure.from = tenure.from.min(self.set.cursors[i].position());
        Ok(())
    }

    /// The partitions this member owns, as of its last receive (or now, after
    /// [`refresh`](Self::refresh)).
    pub fn assignment(&self) -> Vec<u32> {
        self.set.cursors.iter().map(|c| c.partition()).collect()
    }

    /// Adopts the group's current assignment now, without receiving.
    pub fn refresh(&mut self) {
        self.sync();
    }

    /// The generation this member's assignment belongs to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The next offset this member reads in `partition`, if it owns it.
    pub fn position(&self, partition: u32) -> Option<u64> {
        self.set
            .cursors
            .iter()
            .find(|c| c.partition() == partition)
            .map(|c| c.position())
    }

    /// Records this member can still read, over its partitions (as [`Consumer::lag`]
    /// counts them).
    ///
    /// [`Consumer::lag`]: crate::Consumer::lag
    pub fn lag(&self) -> u64 {
        self.set
            .cursors
            .iter()
            .map(|c| c.part.lag_from(c.position()))
            .sum()
    }

    /// The group this member belongs to.
    pub fn group(&self) -> &Group<T> {
        &self.core.group
    }

    /// Leaves the group, and says what this member left behind: the group rebalances at once,
    /// and the other members resume its partitions from the committed offsets (records read
    /// but not committed are read again: at-least-once). Commit what you processed first.
    ///
    /// Dropping a member leaves too (so a task that panics never keeps its partitions), only
    /// without the report.
    ///
    /// ```
    /// use broker::{Broker, Position, TopicConfig};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let topic = Broker::new().topic::<u32>("t", TopicConfig::new())?;
    /// topic.producer().send_batch_blocking(0, [1, 2, 3])?;
    /// let group = topic.group("g")?;
    /// let mut member = group.join();
    /// member.recv_blocking()?.commit()?;
    /// let _uncommitted = member.recv_blocking()?;
    ///
    /// let left = member.leave();
    /// assert_eq!(left.released, [Position { partition: 0, offset: 1 }]);
    /// assert_eq!((left.generation, group.members()), (group.generation(), 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn leave(mut self) -> Left {
        let generation = self.generation;
        if !std::mem::take(&mut self.joined) {
            return Left {
                generation,
                released: Vec::new(),
            };
        }
        let (generation, released) = self.core.group.shared.leave(self.core.id);
        Left {
            generation,
            released,
        }
    }
}

/// What a group member left behind ([`GroupMember::leave`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Left {
    /// The generation the group moved to as the member left.
    pub generation: u64,
    /// The partitions it owned, each at the committed offset its next owner resumes from.
    pub released: Vec<Position>,
}

/// Batches, as on a [`Consumer`](crate::Consumer::recv_batch): many records per call, cloned
/// into [`OwnedRecord`]s. Commit a batch with [`GroupMember::commit`] of its last
/// record's position per partition (or [`commit_offset`](GroupMember::commit_offset)).
impl<T: Clone> GroupMember<T> {
    /// Waits for a record of the partitions this member owns, then appends to `out` every
    /// record available now, up to `max` in all; returns how many it appended (at least one,
    /// unless `max` is 0: then `Ok(0)` at once). A [`RecvError::Lagged`] or
    /// [`RecvError::Closed`] met after some records ends the batch early, and the next
    /// receive returns it. The member adopts a new assignment as [`recv`](Self::recv) does.
    ///
    /// Cancel-safe: records are taken only in the poll that returns them, so dropping the
    /// future loses no record. Give it a deadline with the executor's timer, as shown on
    /// [`Consumer::recv_batch`](crate::Consumer::recv_batch).
    pub async fn recv_batch(
        &mut self,
        max: usize,
        out: &mut Vec<OwnedRecord<T>>,
    ) -> Result<usize, RecvError> {
        batch::recv(self, max, out).await
    }

    /// Blocking [`recv_batch`](Self::recv_batch).
    pub fn recv_batch_blocking(
        &mut self,
        max: usize,
        out: &mut Vec<OwnedRecord<T>>,
    ) -> Result<usize, RecvError> {
        batch::recv_blocking(self, max, out, None).expect("no deadline")
    }

    /// Blocking [`recv_batch`](Self::recv_batch) that waits for the first record at most
    /// `timeout`.
    pub fn recv_batch_timeout(
        &mut self,
        max: usize,
        out: &mut Vec<OwnedRecord<T>>,
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        match batch::recv_blocking(self, max, out, Some(Instant::now() + timeout)) {
            None => Err(RecvTimeoutError::Timeout),
            Some(received) => received.map_err(RecvTimeoutError::Recv),
        }
    }

    /// [`recv_batch`](Self::recv_batch) without waiting: [`TryRecvError::Empty`] if no record
    /// is available now.
    pub fn try_recv_batch(
        &mut self,
        max: usize,
        out: &mut Vec<OwnedRecord<T>>,
    ) -> Result<usize, TryRecvError> {
        batch::try_recv(self, max, out)
    }
}

impl<T> Drop for GroupMember<T> {
    fn drop(&mut self) {
        if self.joined {
            self.core.group.shared.leave(self.core.id);
        }
    }
}

/// What [`GroupMember::recv_event`] gives: a change of the
/// member's partitions, or a record.
#[derive(Debug)]
pub enum MemberEvent<'a, T> {
    /// The member's partitions changed (a member joined or left the group); the records that
    /// follow are read under the new assignment.
    Assigned(AssignmentChange),
    /// A record of a partition the member owns.
    Record(GroupRecord<'a, T>),
}

/// A record read by a group member; it can commit itself.
pub struct GroupRecord<'a, T> {
    record: Record<'a, T>,
    member: &'a MemberCore<T>,
    /// The tenure it was read under.
    tenure: u64,
}

impl<'a, T> GroupRecord<'a, T> {
    /// Commits everything up to and including this record. Refused with
    /// [`CommitError::NotOwner`] if its member lost the partition since it read the record
    /// (even if it got it back).
    pub fn commit(&self) -> Result<(), CommitError> {
        let position = self.record.position();
        self.member.group.commit_offset(
            self.member.id,
            Some(self.tenure),
            position.partition,
            position.offset + 1,
        )
    }

    /// The record, without the ability to commit.
    pub fn into_record(self) -> Record<'a, T> {
        self.record
    }
}

impl<'a, T> std::ops::Deref for GroupRecord<'a, T> {
    type Target = Record<'a, T>;

    fn deref(&self) -> &Record<'a, T> {
        &self.record
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for GroupRecord<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.record.fmt(f)
    }
}
