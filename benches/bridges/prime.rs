//! The prime record of every Kafka run: sent and read back before the clock starts, so that
//! the group join and the first assignment stay out of the measurements.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dataflow::backend::{TopicProducer, TopicReader};
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;

use crate::kafka_raw::{raw_batch, raw_commit, raw_send_batch};
use crate::workload::{BATCH, READ_WAIT, record, stamp};

/// The first record of every Kafka run, sent and read back before the clock starts: the
/// group join and first assignment (1-20 s on tansu) stay out of the measurements.
pub const PRIME: u64 = u64::MAX;
/// How long a Kafka consumer may take to join its group and read the first record.
pub const JOIN_DEADLINE: Duration = Duration::from_secs(60);

/// Sends the prime record through the bridge and reads it back (the join and the first
/// assignment happen here); returns how long that took.
pub async fn prime_bridge(
    producer: &mut TopicProducer<Vec<u8>>,
    reader: &mut TopicReader<Vec<u8>>,
    size: usize,
) -> Duration {
    let started = Instant::now();
    producer
        .send_batch(0, [record(PRIME, size)])
        .await
        .expect("prime send");
    loop {
        assert!(
            started.elapsed() < JOIN_DEADLINE,
            "no record read after {JOIN_DEADLINE:?}: the group did not settle"
        );
        let batch = reader
            .recv_batch(BATCH as usize, READ_WAIT)
            .await
            .expect("recv_batch");
        if let Some(first) = batch.first() {
            assert_eq!(batch.len(), 1, "records before the prime record");
            let value = first.value.as_ref().expect("decodes");
            assert_eq!(stamp(value, size), PRIME, "the prime record came first");
            break;
        }
    }
    reader.commit().await.expect("commit");
    started.elapsed()
}

/// The same with the raw client.
pub async fn prime_raw(
    producer: &FutureProducer,
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    size: usize,
) -> Duration {
    let started = Instant::now();
    raw_send_batch(producer, topic, std::iter::once(record(PRIME, size))).await;
    loop {
        assert!(
            started.elapsed() < JOIN_DEADLINE,
            "no record read after {JOIN_DEADLINE:?}: the group did not settle"
        );
        let batch = raw_batch(consumer, BATCH as usize, READ_WAIT).await;
        if let Some((offset, value)) = batch.first() {
            assert_eq!(batch.len(), 1, "records before the prime record");
            assert_eq!(stamp(value, size), PRIME, "the prime record came first");
            raw_commit(consumer, topic, offset + 1).await;
            break;
        }
    }
    started.elapsed()
}
