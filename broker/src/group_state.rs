//! The state a consumer group keeps, shared by its handles and members: membership, the
//! generation, the assignment, and the committed offsets.

use crate::config::Start;
use crate::cursor::resolve;
use crate::error::{CommitError, SeekError};
use crate::notify::Notifier;
use crate::partition::{Partition, SharedPosition, Tracking, shared_position};
use crate::record::Position;
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, lock, next_id};

pub(crate) struct GroupInner {
    pub(crate) generation: u64,
    /// Member ids, in join order.
    pub(crate) members: Vec<u64>,
    /// Owner of each partition in this generation.
    pub(crate) owners: Vec<Option<u64>>,
    /// Per partition, the generation in which its owner's tenure began: the owner got it
    /// then and has kept it through every rebalance since. A member that loses a partition
    /// and gets it back starts a new tenure, so a commit made under the old one (read before
    /// the loss) is refused: it could move the offset below what another owner committed
    /// meanwhile.
    pub(crate) tenure: Vec<u64>,
    /// The broker was closed: no member joins, no commit is accepted.
    pub(crate) shut_down: bool,
}

/// Stores a group's committed offsets durably (file-backed topics).
pub(crate) type PersistCommits = Box<dyn Fn(&[u64]) -> Result<(), String> + Send + Sync>;

pub(crate) struct GroupState {
    pub(crate) name: String,
    pub(crate) inner: Mutex<GroupInner>,
    /// Mirrors `inner.generation`, so members can check it without the lock.
    pub(crate) generation: AtomicU64,
    /// Next offset to read, per partition. On `Overflow::Block` topics these are registered
    /// with the partitions as positions that must not lose records.
    pub(crate) committed: Box<[SharedPosition]>,
    /// Wakes parked members when the assignment changes.
    pub(crate) rebalance: Notifier,
    /// File-backed topics: stores every commit durably before it is acknowledged.
    pub(crate) persist: Option<PersistCommits>,
}

impl GroupState {
    /// A new group whose committed offsets start at `start` in every partition, or, when
    /// given, at the offsets a file-backed topic stored for it (clamped to what is kept).
    pub(crate) fn new<T>(
        name: &str,
        partitions: &[Arc<Partition<T>>],
        start: Start,
        stored: Option<Vec<u64>>,
    ) -> Result<Self, SeekError> {
        let tracked_id = next_id();
        let committed = partitions
            .iter()
            .map(|part| {
                let position = shared_position();
                let tracking = part.policy.blocks_producers().then_some(Tracking {
                    id: tracked_id,
                    position: &position,
                    register: true,
                });
                let stored = stored
                    .as_ref()
                    .and_then(|s| s.get(part.index as usize).copied());
                let (offset, _) = part.position(
                    |p, blocks| match stored {
                        Some(offset) => Ok(offset.clamp(p.start(), p.end())),
                        None => resolve(p, blocks, start),
                    },
                    tracking,
                )?;
                // Release: pairs with the Acquire in `GroupMember::sync`.
                position.store(offset, Ordering::Release);
                Ok(position)
            })
            .collect::<Result<_, SeekError>>()?;
        Ok(Self {
            name: name.to_owned(),
            inner: Mutex::new(GroupInner {
                generation: 0,
                members: Vec::new(),
                owners: vec![None; partitions.len()],
                tenure: vec![0; partitions.len()],
                shut_down: false,
            }),
            generation: AtomicU64::new(0),
            committed,
            rebalance: Notifier::new(),
            persist: None,
        })
    }

    /// Adds member `id`, unless the broker was closed; returns whether it joined.
    pub(crate) fn join(&self, id: u64) -> bool {
        self.change_members(|inner| {
            if inner.shut_down {
                return false;
            }
            inner.members.push(id);
            true
        })
        .is_some()
    }

    /// Removes member `id`; returns the generation the group moved to and the partitions the
    /// member owned, each at the committed offset its next owner resumes from.
    pub(crate) fn leave(&self, id: u64) -> (u64, Vec<Position>) {
        let mut released = Vec::new();
        let generation = self.change_members(|inner| {
            for (p, owner) in inner.owners.iter().enumerate() {
                if *owner == Some(id) {
                    released.push(Position {
                        partition: p as u32,
                        // Acquire: pairs with the Release in `commit`, which runs under the
                        // same lock.
                        offset: self.committed[p].load(Ordering::Acquire),
                    });
                }
            }
            inner.members.retain(|&m| m != id);
            true
        });
        (generation.expect("a leave always changes"), released)
    }

    /// Stops the group as its broker closes.
    pub(crate) fn shut_down(&self) {
        lock(&self.inner).shut_down = true;
    }

    /// Applies `change` to the membership; if it says it changed it, rebalances into the next
    /// generation, wakes the members, and returns that generation.
    fn change_members(&self, change: impl FnOnce(&mut GroupInner) -> bool) -> Option<u64> {
        let generation = {
            let mut inner = lock(&self.inner);
            if !change(&mut inner) {
                return None;
            }
            let GroupInner {
                members,
                owners,
                tenure,
                generation,
                ..
            } = &mut *inner;
            let before = owners.clone();
            assign(owners, members);
            *generation += 1;
            for (p, owner) in owners.iter().enumerate() {
                if *owner != before[p] {
                    tenure[p] = *generation;
                }
            }
            // Release: pairs with the Acquire in `GroupMember::sync`.
            self.generation.store(inner.generation, Ordering::Release);
            inner.generation
        };
        self.rebalance.notify_all_fenced();
        Some(generation)
    }

    /// Commits `offset` as the next offset to read in `part`, for `member`, which read it
    /// under the tenure that began in generation `tenure`. Refused unless that tenure is
    /// still the current one: `member` owns the partition now and has owned it since.
    pub(crate) fn commit<T>(
        &self,
        member: u64,
        tenure: u64,
        part: &Partition<T>,
        offset: u64,
    ) -> Result<(), CommitError> {
        let partition = part.index;
        {
            let inner = lock(&self.inner);
            if inner.shut_down {
                return Err(CommitError::BrokerClosed);
            }
            let p = partition as usize;
            if inner.owners[p] != Some(member) || inner.tenure[p] != tenure {
                return Err(CommitError::NotOwner {
                    partition,
                    generation: inner.generation,
                });
            }
            let end = part.end();
            if offset > end {
                return Err(CommitError::OffsetOutOfRange {
                    partition,
                    offset,
                    end,
                });
            }
            if let Some(persist) = &self.persist {
                let mut offsets: Vec<u64> = self
                    .committed
                    .iter()
                    // Acquire: pairs with the Release below (earlier commits).
                    .map(|c| c.load(Ordering::Acquire))
                    .collect();
                offsets[partition as usize] = offset;
                persist(&offsets).map_err(|message| CommitError::Storage { message })?;
            }
            // Release: pairs with the Acquire of the next owner (`GroupMember::sync`), of
            // `Group::committed`, and of producers' `refresh_limit` on `Overflow::Block`
            // topics. Under the lock so that a new owner reads it after the last accepted
            // commit.
            self.committed[partition as usize].store(offset, Ordering::Release);
        }
        if part.policy.blocks_producers() {
            part.space.notify_all_fenced();
        }
        Ok(())
    }
}

/// Balanced, sticky assignment: each member gets `n / m` or `n / m + 1` partitions (the
/// earliest members the larger share); a partition keeps its owner while that owner is under
/// its share.
fn assign(owners: &mut [Option<u64>], members: &[u64]) {
    if members.is_empty() {
        owners.fill(None);
        return;
    }
    let (n, m) = (owners.len(), members.len());
    let share = |i: usize| n / m + usize::from(i < n % m);
    let mut counts = vec![0usize; m];
    for owner in owners.iter_mut() {
        let keep = owner
            .and_then(|id| members.iter().position(|&member| member == id))
            .filter(|&i| counts[i] < share(i));
        match keep {
            Some(i) => counts[i] += 1,
            None => *owner = None,
        }
    }
    for owner in owners.iter_mut().filter(|o| o.is_none()) {
        let i = (0..m)
            .find(|&i| counts[i] < share(i))
            .expect("shares add up to the partition count");
        counts[i] += 1;
        *owner = Some(members[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::assign;

    #[test]
    fn assignment_is_balanced_and_sticky() {
        let mut owners = vec![None; 5];
        assign(&mut owners, &[1]);
        assert_eq!(owners, vec![Some(1); 5]);
        assign(&mut owners, &[1, 2]);
        assert_eq!(owners.iter().filter(|o| **o == Some(1)).count(), 3);
        assert_eq!(owners.iter().filter(|o| **o == Some(2)).count(), 2);
        // Member 1 kept its first three partitions: sticky.
        assert_eq!(&owners[..3], &[Some(1); 3]);
        assign(&mut owners, &[2]);
        assert_eq!(owners, vec![Some(2); 5]);
        assign(&mut owners, &[]);
        assert_eq!(owners, vec![None; 5]);
    }
}
