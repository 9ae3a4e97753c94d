//! The idempotent producer every topic of a backend shares: one librdkafka producer keeps
//! the connections and batches together, and is replaced whole after a fatal error.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::errors::{Context, backend_error};
use super::{SCHEME, drop_blocking, lock};
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
}

impl KafkaProducer {
    pub(super) fn new(
        topic: &str,
        endpoint: &str,
        producer: Arc<SharedProducer>,
        context: Context,
    ) -> Self {
        Self {
            topic: topic.to_owned(),
            endpoint: endpoint.to_owned(),
            producer,
            context,
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

/// Sends `payloads` to `partition` of `topic` and waits until all are acknowledged.
async fn send_all(
    producer: &FutureProducer<Context>,
    topic: &str,
    partition: i32,
    payloads: &[Vec<u8>],
) -> Result<(), KafkaError> {
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
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(error),
            Err(_canceled) => return Err(KafkaError::Canceled),
        }
    }
    Ok(())
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
                let Err(error) = send_all(&producer, &self.topic, partition, payloads).await else {
                    return Ok(());
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
}
