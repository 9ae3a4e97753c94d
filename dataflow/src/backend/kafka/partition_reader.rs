//! Reading one partition outside any group (a task restoring keyed state reads its
//! changelog so): an assigned consumer, never subscribed, that commits nothing.

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

use super::context::Context;
use super::errors::{Class, backend_error, class_of};
use super::member::delivery;
use crate::backend::{BackendError, Delivery};

/// Reads up to `max` records of `partition` after `cursor` (the next offset; empty: the
/// beginning) with an assigned consumer, until the end of the partition. Blocking.
pub(super) fn read(
    config: &ClientConfig,
    topic: &str,
    partition: u32,
    cursor: &str,
    max: usize,
    endpoint: &str,
) -> Result<(Vec<Delivery>, String), BackendError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    let context = Context::default();
    let fail = |e: &KafkaError| backend_error(e, &context, endpoint);
    let consumer: BaseConsumer<Context> = config
        .create_with_context(context.clone())
        .map_err(|e| fail(&e))?;
    let kafka_partition = i32::try_from(partition).unwrap_or(i32::MAX);
    let start = match cursor.parse::<i64>() {
        Ok(next) => Offset::Offset(next),
        Err(_) => Offset::Beginning,
    };
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, kafka_partition, start)
        .map_err(|e| fail(&e))?;
    consumer.assign(&assignment).map_err(|e| fail(&e))?;
    let mut out = Vec::new();
    let mut next = cursor.to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while out.len() < max.max(1) && std::time::Instant::now() < deadline {
        match consumer.poll(std::time::Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let delivery = delivery(&message);
                next = (delivery.offset + 1).to_string();
                out.push(delivery);
            }
            Some(Err(KafkaError::PartitionEOF(_))) => break,
            Some(Err(error)) if class_of(&error) == Class::Transient => {}
            Some(Err(error)) => return Err(fail(&error)),
            None => {}
        }
    }
    Ok((out, next))
}
