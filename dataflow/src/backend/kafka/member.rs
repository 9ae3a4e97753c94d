//! A consumer-group member, and the settling of the members this process joins: the runtime
//! joins one member per partition, one after the other, and a partition must not move
//! between local tasks (each keeps its keyed state) while the group rebalances.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{FutureExt, StreamExt};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::context::{Context, LocalGroup, MemberState};
use super::errors::{Class, backend_error, class_of, code_of, join_error};
use super::{SCHEME, drop_blocking, lock};
use crate::backend::{BackendError, BoxFuture, Delivery, RemoteMember};

/// How long leaving a group may take before it goes on in the background.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(15);
/// One consumer of a Kafka consumer group.
pub struct KafkaMember {
    topic: String,
    group: String,
    endpoint: String,
    /// `None` once left. An `Arc` so that blocking calls (commit, close) run off the async
    /// workers.
    consumer: Option<Arc<StreamConsumer<Context>>>,
    context: Context,
    local: Arc<LocalGroup>,
    state: Arc<MemberState>,
    /// Whether the local group has settled once (from then on records go out as read).
    settled: bool,
    /// Records read before the group settled, all of assignment round `held_round`.
    held: Vec<Delivery>,
    held_round: u64,
    /// When the current run of transient errors began.
    outage: Option<Instant>,
    /// How long a read or a commit retries through transient errors before reporting them.
    retry_for: Duration,
    /// A fatal error met after records were read: returned by the next poll.
    pending: Option<BackendError>,
}

impl fmt::Debug for KafkaMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaMember")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl Drop for KafkaMember {
    fn drop(&mut self) {
        self.forget();
        if let Some(consumer) = self.consumer.take() {
            drop_blocking(consumer);
        }
    }
}

pub(super) fn delivery(message: &BorrowedMessage<'_>) -> Delivery {
    let millis = message.timestamp().to_millis().unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    Delivery {
        partition: u32::try_from(message.partition()).unwrap_or_default(),
        offset: u64::try_from(message.offset()).unwrap_or_default(),
        timestamp_nanos: u64::try_from(millis)
            .unwrap_or_default()
            .saturating_mul(1_000_000),
        payload: message.payload().unwrap_or_default().to_vec(),
        id: None,
    }
}

impl KafkaMember {
    /// Joins `group` of `topic` as a new member of `local`, with a consumer made from
    /// `config`; reads and commits retry through transient errors for `retry_for`. With
    /// `instance`, the member is static: `{instance}-{slot}`.
    pub(super) fn join(
        config: &ClientConfig,
        topic: &str,
        group: &str,
        endpoint: &str,
        local: Arc<LocalGroup>,
        retry_for: Duration,
        instance: Option<&str>,
    ) -> Result<Self, BackendError> {
        let state = {
            let mut members = lock(&local.members);
            let slot = (0..)
                .find(|slot| members.iter().all(|m| m.slot != *slot))
                .expect("a free slot");
            let state = Arc::new(MemberState {
                slot,
                ..MemberState::default()
            });
            members.push(Arc::clone(&state));
            state
        };
        local.epoch.fetch_add(1, Ordering::AcqRel);
        *lock(&local.last_join) = Instant::now();
        let context = Context::for_member(Arc::clone(&local), Arc::clone(&state));
        let mut config = config.clone();
        config.set("group.id", group);
        if let Some(instance) = instance {
            config.set("group.instance.id", format!("{instance}-{}", state.slot));
        }
        // Creating a consumer starts librdkafka's threads and the stream's wake task: no
        // network wait, so it is fine on an async worker.
        let consumer: StreamConsumer<Context> = config
            .create_with_context(context.clone())
            .map_err(|e| backend_error(&e, &context, endpoint))?;
        // Subscribing does not wait for the assignment: the members of a segment join
        // one after the other, and the group settles while they poll.
        consumer
            .subscribe(&[topic])
            .map_err(|e| backend_error(&e, &context, endpoint))?;
        Ok(Self {
            topic: topic.to_owned(),
            group: group.to_owned(),
            endpoint: endpoint.to_owned(),
            consumer: Some(Arc::new(consumer)),
            context,
            local,
            state,
            settled: false,
            held: Vec::new(),
            held_round: 0,
            outage: None,
            retry_for,
            pending: None,
        })
    }

    /// Leaves the local group's books, so that the others do not wait for this member.
    fn forget(&self) {
        lock(&self.local.members).retain(|m| !Arc::ptr_eq(m, &self.state));
    }

    /// Until the local group settles, keeps `batch` back and returns nothing; then returns
    /// what was kept.
    fn hold_back(&mut self, batch: Vec<Delivery>, max: usize) -> Vec<Delivery> {
        if self.settled {
            return batch;
        }
        self.held.extend(batch);
        if !self.local.settled() {
            return Vec::new();
        }
        self.settled = true;
        let assigned = lock(&self.state.assignment).clone().unwrap_or_default();
        // Only partitions still owned: a revoked one is read again by its owner.
        self.held
            .retain(|d| i32::try_from(d.partition).is_ok_and(|p| assigned.contains(&p)));
        let rest = self.held.split_off(self.held.len().min(max));
        std::mem::replace(&mut self.held, rest)
    }

    fn consumer(&self) -> Result<Arc<StreamConsumer<Context>>, BackendError> {
        self.consumer.clone().ok_or_else(|| BackendError::Server {
            backend: SCHEME,
            message: format!("member of group `{}` has left", self.group),
        })
    }

    fn error(&self, error: &KafkaError) -> BackendError {
        backend_error(error, &self.context, &self.endpoint)
    }

    /// Handles an error read from the consumer: `Err` if the caller must see it now.
    fn consumer_error(&mut self, error: &KafkaError) -> Result<(), BackendError> {
        let fatal = matches!(error, KafkaError::MessageConsumptionFatal(_));
        match class_of(error) {
            Class::Auth | Class::Tls | Class::Fenced => return Err(self.error(error)),
            _ if fatal => return Err(self.error(error)),
            _ => {}
        }
        // librdkafka reports transport errors and keeps reconnecting: report them only when
        // they last.
        let since = *self.outage.get_or_insert_with(Instant::now);
        if since.elapsed() > self.retry_for {
            return Err(BackendError::Unreachable {
                backend: SCHEME,
                endpoint: self.endpoint.clone(),
                message: format!(
                    "no record for {:?} of errors; last: {error}",
                    self.retry_for
                ),
            });
        }
        Ok(())
    }
}

/// Commits `positions` (last processed offsets) for the partitions `consumer` still owns.
/// Blocking.
fn commit_owned(
    consumer: &StreamConsumer<Context>,
    topic: &str,
    positions: &[(u32, u64)],
) -> Result<Vec<u32>, KafkaError> {
    let assignment = consumer.assignment()?;
    let mut offsets = TopicPartitionList::new();
    let mut refused = Vec::new();
    for &(partition, offset) in positions {
        let (Ok(kafka_partition), Ok(next)) = (i32::try_from(partition), i64::try_from(offset + 1))
        else {
            continue;
        };
        // A partition revoked meanwhile is left to its new owner, which reads it again.
        if assignment.find_partition(topic, kafka_partition).is_some() {
            offsets.add_partition_offset(topic, kafka_partition, Offset::Offset(next))?;
        } else {
            refused.push(partition);
        }
    }
    if offsets.count() > 0 {
        consumer.commit(&offsets, CommitMode::Sync)?;
    }
    Ok(refused)
}

impl RemoteMember for KafkaMember {
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, BackendError>> {
        Box::pin(async move {
            if let Some(error) = self.pending.take() {
                return Err(error);
            }
            let max = max.max(1);
            if self.settled && !self.held.is_empty() {
                let rest = self.held.split_off(self.held.len().min(max));
                return Ok(std::mem::replace(&mut self.held, rest));
            }
            let consumer = self.consumer()?;
            let deadline = tokio::time::Instant::now() + wait;
            let mut batch = Vec::new();
            let mut stream = consumer.stream();
            while batch.len() < max {
                let next = if batch.is_empty() {
                    match tokio::time::timeout_at(deadline, stream.next()).await {
                        Ok(next) => next,
                        Err(_elapsed) => break,
                    }
                } else {
                    // Only what is already there: the batch goes out without waiting more.
                    match stream.next().now_or_never() {
                        Some(next) => next,
                        None => break,
                    }
                };
                match next {
                    Some(Ok(message)) => {
                        self.outage = None;
                        if !self.settled {
                            // A new assignment round restarts every partition from its
                            // committed offset: what was held from the last round goes.
                            let round = self.state.assignments.load(Ordering::Acquire);
                            if round != self.held_round {
                                self.held.clear();
                                batch.clear();
                                self.held_round = round;
                            }
                        }
                        batch.push(delivery(&message));
                    }
                    Some(Err(error)) => {
                        if let Err(error) = self.consumer_error(&error) {
                            if batch.is_empty() {
                                return Err(error);
                            }
                            self.pending = Some(error);
                            break;
                        }
                    }
                    // A consumer stream never ends.
                    None => break,
                }
            }
            Ok(self.hold_back(batch, max))
        })
    }

    fn commit<'a>(
        &'a mut self,
        positions: &'a [(u32, u64)],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>> {
        Box::pin(async move {
            if positions.is_empty() {
                return Ok(Vec::new());
            }
            let consumer = self.consumer()?;
            let started = Instant::now();
            let mut backoff = Duration::from_millis(100);
            loop {
                let consumer = Arc::clone(&consumer);
                let topic = self.topic.clone();
                let owned = positions.to_vec();
                // A synchronous commit waits for the coordinator: off the async workers.
                let committed =
                    tokio::task::spawn_blocking(move || commit_owned(&consumer, &topic, &owned));
                let result = tokio::time::timeout(self.retry_for, committed)
                    .await
                    .map_err(|_| BackendError::Unreachable {
                        backend: SCHEME,
                        endpoint: self.endpoint.clone(),
                        message: format!("offset commit still waiting after {:?}", self.retry_for),
                    })?
                    .map_err(join_error)?;
                let error = match result {
                    Ok(refused) => return Ok(refused),
                    Err(error) => error,
                };
                match class_of(&error) {
                    // The group moved on (its partitions are being reassigned): the records
                    // are read again by their next owner, unless a later commit covers them.
                    Class::Rebalance => return Ok(positions.iter().map(|&(p, _)| p).collect()),
                    Class::Transient if started.elapsed() < self.retry_for => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                    _ if code_of(&error) == Some(RDKafkaErrorCode::NoOffset) => {
                        return Ok(Vec::new());
                    }
                    _ => return Err(self.error(&error)),
                }
            }
        })
    }

    fn leave(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.forget();
            let Some(consumer) = self.consumer.take() else {
                return Ok(());
            };
            // Closing sends LeaveGroup, so the partitions move at once; it blocks until done.
            let closing = tokio::task::spawn_blocking(move || {
                consumer.unsubscribe();
                drop(consumer);
            });
            match tokio::time::timeout(LEAVE_TIMEOUT, closing).await {
                Ok(joined) => joined.map_err(join_error),
                // Still closing: it finishes in the background; the group will time it out.
                Err(_) => Ok(()),
            }
        })
    }

    fn assignment(&self) -> Option<Vec<u32>> {
        let assigned = lock(&self.state.assignment).clone().unwrap_or_default();
        Some(
            assigned
                .into_iter()
                .filter_map(|p| u32::try_from(p).ok())
                .collect(),
        )
    }
}
