//! The idempotent producer every topic of a backend shares: one librdkafka producer keeps
//! the connections and batches together, and is replaced whole after a fatal error.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::backlog::{Backlogs, largest_backlog};
use super::context::Context;
use super::errors::{backend_error, join_error};
use super::{LocalGroups, SCHEME, drop_blocking, lock};
use crate::backend::{BackendError, BoxFuture, RemoteProducer};

/// The idempotent producer every [`KafkaProducer`] of a backend shares, replaced after a
/// fatal error (librdkafka's cure: a broker that lost the producer's sequence state, say).
pub(super) struct SharedProducer {
    /// Holds the password: never printed.
    config: ClientConfig,
    context: Context,
    current: Mutex<FutureProducer<Context>>,
}

impl SharedProducer {
    /// A producer made from `config`, whose errors go to `context`.
    pub(super) fn new(config: ClientConfig, context: Context) -> Result<Self, KafkaError> {
        let producer: FutureProducer<Context> = config.create_with_context(context.clone())?;
        Ok(Self {
            config,
            context,
            current: Mutex::new(producer),
        })
    }

    pub(super) fn get(&self) -> FutureProducer<Context> {
        lock(&self.current).clone()
    }

    /// Replaces `failed` by a new producer unless another sender already did.
    fn renew(&self, failed: &FutureProducer<Context>) -> Result<(), KafkaError> {
        let mut current = lock(&self.current);
        if current.client().native_ptr() == failed.client().native_ptr() {
            let fresh = self.config.create_with_context(self.context.clone())?;
            drop_blocking(std::mem::replace(&mut *current, fresh));
        }
        Ok(())
    }
}

/// Appends to one Kafka topic through the backend's shared idempotent producer.
pub struct KafkaProducer {
    topic: String,
    endpoint: String,
    producer: Arc<SharedProducer>,
    context: Context,
    /// The groups this process joined, for [`backlog`](RemoteProducer::backlog).
    groups: LocalGroups,
    backlogs: Arc<Mutex<Backlogs>>,
    /// The offset of the last record this producer wrote to each partition.
    written: HashMap<u32, i64>,
}

impl KafkaProducer {
    pub(super) fn new(
        topic: &str,
        endpoint: &str,
        producer: Arc<SharedProducer>,
        context: Context,
        groups: LocalGroups,
        backlogs: Arc<Mutex<Backlogs>>,
    ) -> Self {
        Self {
            topic: topic.to_owned(),
            endpoint: endpoint.to_owned(),
            producer,
            context,
            groups,
            backlogs,
            written: HashMap::new(),
        }
    }
}

impl fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Sends `payloads` to `partition` of `topic` and waits until all are acknowledged; returns
/// the offset of the last one.
async fn send_all(
    producer: &FutureProducer<Context>,
    topic: &str,
    partition: i32,
    payloads: &[Vec<u8>],
) -> Result<Option<i64>, KafkaError> {
    let mut pending = Vec::with_capacity(payloads.len());
    for payload in payloads {
        // Enqueue all, then wait for all: the batch travels together, and idempotence keeps
        // it in order through retries.
        loop {
            let record = FutureRecord::<(), [u8]>::to(topic)
                .partition(partition)
                .payload(payload.as_slice());
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // librdkafka's local queue is full: wait for deliveries to drain it.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }
    let mut last = None;
    for delivery in pending {
        match delivery.await {
            Ok(Ok(delivered)) => last = last.max(Some(delivered.offset)),
            Ok(Err((error, _))) => return Err(error),
            Err(_canceled) => return Err(KafkaError::Canceled),
        }
    }
    Ok(last)
}

impl RemoteProducer for KafkaProducer {
    fn send<'a>(
        &'a mut self,
        partition: u32,
        payloads: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let partition = i32::try_from(partition).map_err(|_| BackendError::Topic {
                backend: SCHEME,
                topic: self.topic.clone(),
                message: format!("partition {partition} does not exist"),
            })?;
            let mut renewed = false;
            loop {
                let producer = self.producer.get();
                let error = match send_all(&producer, &self.topic, partition, payloads).await {
                    Ok(last) => {
                        if let Some(last) = last {
                            let written = self.written.entry(partition as u32).or_insert(last);
                            *written = (*written).max(last);
                        }
                        return Ok(());
                    }
                    Err(error) => error,
                };
                match producer.client().fatal_error() {
                    // Once, with a new producer: the whole batch again (at-least-once).
                    Some(_) if !renewed => {
                        self.producer
                            .renew(&producer)
                            .map_err(|e| backend_error(&e, &self.context, &self.endpoint))?;
                        renewed = true;
                    }
                    Some((code, reason)) => {
                        return Err(BackendError::Server {
                            backend: SCHEME,
                            message: format!("fatal producer error {code}: {reason}"),
                        });
                    }
                    None => return Err(backend_error(&error, &self.context, &self.endpoint)),
                }
            }
        })
    }

    fn backlog(&mut self, partition: u32) -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
        Box::pin(async move {
            // The groups this process joined on the topic: a pipeline's downstream segment
            // (every process of a pipeline runs every segment).
            let groups: Vec<String> = lock(&self.groups)
                .keys()
                .filter(|(topic, _)| *topic == self.topic)
                .map(|(_, group)| group.clone())
                .collect();
            if groups.is_empty() {
                return Ok(None);
            }
            let readers = {
                let mut backlogs = lock(&self.backlogs);
                groups
                    .iter()
                    .map(|group| backlogs.reader(group))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| backend_error(&e, &self.context, &self.endpoint))?
            };
            let Ok(index) = i32::try_from(partition) else {
                return Ok(None);
            };
            let topic = self.topic.clone();
            let written_end = self.written.get(&partition).map(|last| last + 1);
            // Offset and watermark requests block: off the async workers.
            tokio::task::spawn_blocking(move || {
                largest_backlog(&readers, &topic, index, written_end)
            })
            .await
            .map_err(join_error)?
            .map_err(|e| backend_error(&e, &self.context, &self.endpoint))
        })
    }
}
