//! The raw `rdkafka` client (X3's peer) with the bridge's settings, doing what the bridge
//! does; and what a Kafka peer needs.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::servers::Tansu;
use crate::workload::BATCH;

/// What a Kafka peer needs.
pub struct Kafka {
    /// The broker (for its process id, and to stop it last).
    pub broker: Tansu,
    /// `kafka://127.0.0.1:PORT`, for the bridge.
    pub url: String,
    /// `127.0.0.1:PORT`, for the raw client.
    pub bootstrap: String,
    /// Creates and deletes topics.
    admin: AdminClient<DefaultClientContext>,
}

impl Kafka {
    /// The clients' addresses of `broker`, and an admin client.
    pub fn new(broker: Tansu) -> Self {
        let bootstrap = format!("127.0.0.1:{}", broker.port());
        let admin = raw_kafka_config(&bootstrap).create().expect("admin client");
        Self {
            url: format!("kafka://{bootstrap}"),
            bootstrap,
            broker,
            admin,
        }
    }

    /// Creates `topic` with one partition (for the raw client; the bridge creates its own).
    pub async fn create_topic(&self, topic: &str) {
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in self
            .admin
            .create_topics([&new], &options)
            .await
            .expect("CreateTopics")
        {
            result.unwrap_or_else(|(t, code)| panic!("creating {t}: {code}"));
        }
    }

    /// A raw consumer of `topic` in `group`, subscribed (the join goes on in the background).
    pub fn raw_consumer(&self, topic: &str, group: &str) -> Arc<StreamConsumer> {
        let consumer: StreamConsumer = raw_kafka_consumer_config(&self.bootstrap, group)
            .create()
            .expect("raw consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        Arc::new(consumer)
    }

    /// Checks that `group` committed offset `n` on partition 0 of `topic` (the readers
    /// commit the offset after the last record they processed, so with `n` records read
    /// in order, once each, the offsets were dense: nothing lost or written twice before the
    /// last one), then deletes the topic. Not checked: the high watermark, which tansu 0.6
    /// reports as the last batch's first offset + 1 (4 902 for 5 001 records in 51 batches).
    pub async fn check_and_drop(&self, topic: &str, group: &str, n: u64) {
        let config = raw_kafka_consumer_config(&self.bootstrap, group);
        let (t, g) = (topic.to_owned(), group.to_owned());
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create().expect("check consumer");
            let timeout = Duration::from_secs(10);
            let mut partition = TopicPartitionList::new();
            partition.add_partition(&t, 0);
            let committed = consumer
                .committed_offsets(partition, timeout)
                .expect("committed offsets");
            let offset = committed.find_partition(&t, 0).map(|e| e.offset());
            assert_eq!(
                offset,
                Some(Offset::Offset(n as i64)),
                "{t}: group {g} committed {offset:?}, not {n}"
            );
        })
        .await
        .expect("check task");
        // Frees the broker's memory; a broker that cannot delete topics just keeps them.
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let _ = self.admin.delete_topics(&[topic], &options).await;
    }
}

/// The settings every raw client shares (those of the bridge's `base_config`).
fn raw_kafka_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "dataflow-bench-raw")
        .set("allow.auto.create.topics", "false")
        .set_log_level(RDKafkaLogLevel::Error);
    config
}

/// The raw producer: the bridge's settings (idempotent, `acks=all`).
pub fn raw_kafka_producer(bootstrap: &str) -> FutureProducer {
    raw_kafka_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("raw producer")
}

/// Consumer settings of group `group`: the bridge's (manual commits, from the earliest
/// record, `fetch.wait.max.ms=100`).
fn raw_kafka_consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = raw_kafka_config(bootstrap);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100");
    config
}

/// Enqueues `value` for partition 0 of `topic`; the future resolves on its acknowledgement.
pub fn raw_enqueue(producer: &FutureProducer, topic: &str, value: &[u8]) -> Option<DeliveryFuture> {
    let record = FutureRecord::<(), [u8]>::to(topic)
        .partition(0)
        .payload(value);
    match producer.send_result(record) {
        Ok(delivery) => Some(delivery),
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => None,
        Err((error, _)) => panic!("raw send to {topic}: {error}"),
    }
}

/// Waits for the acknowledgement of one raw send, panicking if it failed.
pub async fn raw_delivered(delivery: DeliveryFuture) {
    match delivery.await {
        Ok(Ok(_)) => {}
        Ok(Err((error, _))) => panic!("raw send failed: {error}"),
        Err(_canceled) => panic!("raw send canceled"),
    }
}

/// Sends `values` to partition 0 of `topic` and waits until all are acknowledged (what the
/// bridge's producer does with a batch).
pub async fn raw_send_batch(
    producer: &FutureProducer,
    topic: &str,
    values: impl Iterator<Item = Vec<u8>>,
) {
    let mut pending = Vec::with_capacity(BATCH as usize);
    for value in values {
        loop {
            if let Some(delivery) = raw_enqueue(producer, topic, &value) {
                pending.push(delivery);
                break;
            }
            // librdkafka's local queue is full: wait for deliveries to drain it.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for delivery in pending {
        raw_delivered(delivery).await;
    }
}

/// Up to `max` records (offset, payload): waits up to `wait` for the first, then takes what
/// is already there, as the bridge's reader does.
pub async fn raw_batch(
    consumer: &StreamConsumer,
    max: usize,
    wait: Duration,
) -> Vec<(i64, Vec<u8>)> {
    let mut stream = consumer.stream();
    let deadline = tokio::time::Instant::now() + wait;
    let mut batch = Vec::new();
    while batch.len() < max {
        let next = if batch.is_empty() {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(next) => next,
                Err(_elapsed) => break,
            }
        } else {
            match stream.next().now_or_never() {
                Some(next) => next,
                None => break,
            }
        };
        match next {
            Some(Ok(message)) => batch.push((
                message.offset(),
                message.payload().unwrap_or_default().to_vec(),
            )),
            // Transient (librdkafka reconnects); a lasting one runs into the deadlines.
            Some(Err(error)) => eprintln!("raw consumer: {error}"),
            None => break,
        }
    }
    batch
}

/// Commits `next` (the offset after the last record processed) synchronously, off the async
/// workers as the bridge does.
pub async fn raw_commit(consumer: &Arc<StreamConsumer>, topic: &str, next: i64) {
    let consumer = Arc::clone(consumer);
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(&topic, 0, Offset::Offset(next))
            .expect("offset");
        consumer.commit(&offsets, CommitMode::Sync)
    })
    .await
    .expect("commit task")
    .expect("commit");
}

/// Closes a raw consumer (leaves its group; blocking) off the async workers.
pub async fn raw_close(consumer: Arc<StreamConsumer>) {
    tokio::task::spawn_blocking(move || {
        consumer.unsubscribe();
        drop(consumer);
    })
    .await
    .expect("close task");
}
