//! Throughput runs: `n` records written in batches by a producer task while a consumer task
//! of a fresh group reads, checks and acknowledges them, for every peer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dataflow::TopicSpec;
use dataflow::backend::Connection;
use redis::AsyncTypedCommands;

use crate::cpu_use::{CpuSample, CpuUse};
use crate::kafka_raw::{
    Kafka, raw_batch, raw_close, raw_commit, raw_kafka_producer, raw_send_batch,
};
use crate::peer::Peer;
use crate::prime::{prime_bridge, prime_raw};
use crate::redis_raw::{Redis, bridge_keys, for_each_payload, read_options};
use crate::workload::{
    BATCH, GROUP, READ_WAIT, RUN_DEADLINE, check_next, drain_and_leave, kafka_group, record,
};

/// One throughput run.
pub struct Throughput {
    /// Records written and read.
    pub records: u64,
    /// From the first write to the last acknowledgement.
    pub seconds: f64,
    /// From the first write to the last one.
    pub producer_seconds: f64,
    /// CPU used from the first write to the last acknowledgement.
    pub cpu: CpuUse,
    /// Kafka: the group join and the prime record, before the clock started.
    pub joined: Option<Duration>,
}

impl Throughput {
    /// Records per second, end to end.
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

/// One throughput run through a [`Connection`] (the embedded broker or a bridge): a producer
/// task writes `n` records in batches while a reader task reads, checks and commits them.
/// With `prime`, a first record is sent and read back untimed, so that the group join (slow
/// on Kafka) stays out of the figure.
async fn connection_throughput(
    url: &str,
    topic: &str,
    group: &str,
    run: (u64, usize),
    server: u32,
    prime: bool,
    drain_wait: Duration,
) -> Throughput {
    let (n, size) = run;
    let connection = Connection::open(url).await.expect("connection");
    let spec = TopicSpec::new(topic).partitions(1);
    let mut reader = connection
        .reader::<Vec<u8>>(spec.clone(), group)
        .await
        .expect("reader");
    let mut producer = connection
        .producer::<Vec<u8>>(spec)
        .await
        .expect("producer");
    let joined = if prime {
        Some(prime_bridge(&mut producer, &mut reader, size).await)
    } else {
        None
    };
    let cpu = CpuSample::take(server);
    let start = Instant::now();
    let produce = tokio::spawn(async move {
        for b in 0..n / BATCH {
            let batch = (b * BATCH..(b + 1) * BATCH).map(|i| record(i, size));
            producer.send_batch(0, batch).await.expect("send_batch");
        }
        Instant::now()
    });
    let consume = tokio::spawn(async move {
        let mut next = 0;
        while next < n {
            assert!(start.elapsed() < RUN_DEADLINE, "{n} sent, {next} read");
            let batch = reader
                .recv_batch(BATCH as usize, READ_WAIT)
                .await
                .expect("recv_batch");
            for received in &batch {
                let value = received.value.as_ref().expect("decodes");
                check_next(&mut next, value, size);
            }
            reader.commit().await.expect("commit");
        }
        (Instant::now(), reader)
    });
    let produced = produce.await.expect("producer task");
    let (done, reader) = consume.await.expect("consumer task");
    let run = Throughput {
        records: n,
        seconds: (done - start).as_secs_f64(),
        producer_seconds: (produced - start).as_secs_f64(),
        cpu: cpu.until(&CpuSample::take(server)),
        joined,
    };
    drain_and_leave(reader, drain_wait).await;
    run
}

/// One throughput run of the embedded broker or a Redis peer; on Redis, the stream is
/// checked afterwards (every entry there, none pending).
pub async fn throughput(peer: Peer, redis: &Redis, topic: &str, n: u64, size: usize) -> Throughput {
    assert!(
        n > 0 && n.is_multiple_of(BATCH),
        "BENCH_RECORDS must be a multiple of {BATCH}"
    );
    match peer {
        Peer::Mem | Peer::Bridge => {
            let url = if peer == Peer::Mem {
                "mem://"
            } else {
                &redis.url
            };
            let run = connection_throughput(
                url,
                topic,
                GROUP,
                (n, size),
                redis.server.pid(),
                false,
                Duration::from_millis(20),
            )
            .await;
            if peer == Peer::Bridge {
                let key = format!("{topic}:0");
                redis.raw.check_and_drop(&key, n, &bridge_keys(topic)).await;
            }
            run
        }
        Peer::Raw => {
            let key = format!("{topic}:0");
            let mut commands = redis.raw.commands.clone();
            commands
                .xgroup_create_mkstream(&key, GROUP, "0")
                .await
                .expect("XGROUP CREATE");
            let (mut writes, mut acks) = (commands.clone(), commands);
            let mut reads = redis.raw.blocking.clone();
            let cpu = CpuSample::take(redis.server.pid());
            let start = Instant::now();
            let produce = {
                let key = key.clone();
                tokio::spawn(async move {
                    for b in 0..n / BATCH {
                        let mut pipe = redis::pipe();
                        for i in b * BATCH..(b + 1) * BATCH {
                            pipe.xadd(&key, "*", &[("payload", record(i, size))])
                                .ignore();
                        }
                        pipe.query_async::<()>(&mut writes)
                            .await
                            .expect("XADD pipeline");
                    }
                    Instant::now()
                })
            };
            let consume = {
                let key = key.clone();
                tokio::spawn(async move {
                    let options = read_options();
                    let mut next = 0;
                    let mut ids = Vec::with_capacity(BATCH as usize);
                    while next < n {
                        assert!(start.elapsed() < RUN_DEADLINE, "{n} sent, {next} read");
                        let reply = reads
                            .xread_options(&[&key], &[">"], &options)
                            .await
                            .expect("XREADGROUP");
                        for_each_payload(reply, &mut ids, |payload| {
                            check_next(&mut next, payload, size);
                        });
                        if !ids.is_empty() {
                            let acked = acks.xack(&key, GROUP, &ids).await.expect("XACK");
                            assert_eq!(acked, ids.len(), "XACK acknowledged fewer entries");
                        }
                    }
                    Instant::now()
                })
            };
            let produced = produce.await.expect("producer task");
            let done = consume.await.expect("consumer task");
            let run = Throughput {
                records: n,
                seconds: (done - start).as_secs_f64(),
                producer_seconds: (produced - start).as_secs_f64(),
                cpu: cpu.until(&CpuSample::take(redis.server.pid())),
                joined: None,
            };
            redis.raw.check_and_drop(&key, n, &[]).await;
            run
        }
        Peer::KafkaBridge | Peer::KafkaRaw => unreachable!("see kafka_throughput"),
    }
}

/// One throughput run of a Kafka peer: as `throughput`, after the prime record (the group
/// join is not timed), then the log and the group's committed offset are checked.
pub async fn kafka_throughput(
    peer: Peer,
    kafka: &Kafka,
    topic: &str,
    n: u64,
    size: usize,
) -> Throughput {
    assert!(
        n > 0 && n.is_multiple_of(BATCH),
        "BENCH_KAFKA_RECORDS must be a multiple of {BATCH}"
    );
    let group = kafka_group(topic);
    let server = kafka.broker.pid();
    let run = match peer {
        Peer::KafkaBridge => {
            connection_throughput(
                &kafka.url,
                topic,
                &group,
                (n, size),
                server,
                true,
                Duration::from_millis(200),
            )
            .await
        }
        Peer::KafkaRaw => {
            kafka.create_topic(topic).await;
            let producer = raw_kafka_producer(&kafka.bootstrap);
            let consumer = kafka.raw_consumer(topic, &group);
            let joined = prime_raw(&producer, &consumer, topic, size).await;
            let cpu = CpuSample::take(server);
            let start = Instant::now();
            let produce = {
                let topic = topic.to_owned();
                tokio::spawn(async move {
                    for b in 0..n / BATCH {
                        let batch = (b * BATCH..(b + 1) * BATCH).map(|i| record(i, size));
                        raw_send_batch(&producer, &topic, batch).await;
                    }
                    (Instant::now(), producer)
                })
            };
            let consume = {
                let topic = topic.to_owned();
                let consumer = Arc::clone(&consumer);
                tokio::spawn(async move {
                    let mut next = 0;
                    while next < n {
                        assert!(start.elapsed() < RUN_DEADLINE, "{n} sent, {next} read");
                        let batch = raw_batch(&consumer, BATCH as usize, READ_WAIT).await;
                        let Some(&(last, _)) = batch.last() else {
                            continue;
                        };
                        for (_, value) in &batch {
                            check_next(&mut next, value, size);
                        }
                        raw_commit(&consumer, &topic, last + 1).await;
                    }
                    Instant::now()
                })
            };
            let (produced, producer) = produce.await.expect("producer task");
            let done = consume.await.expect("consumer task");
            let run = Throughput {
                records: n,
                seconds: (done - start).as_secs_f64(),
                producer_seconds: (produced - start).as_secs_f64(),
                cpu: cpu.until(&CpuSample::take(server)),
                joined: Some(joined),
            };
            let extra = raw_batch(&consumer, BATCH as usize, Duration::from_millis(200)).await;
            assert!(extra.is_empty(), "{} records more than sent", extra.len());
            raw_close(consumer).await;
            tokio::task::spawn_blocking(move || drop(producer))
                .await
                .expect("producer drop");
            run
        }
        Peer::Mem | Peer::Bridge | Peer::Raw => unreachable!("{peer:?} is not a Kafka peer"),
    };
    // All records and the prime one, all committed.
    kafka.check_and_drop(topic, &group, n + 1).await;
    run
}
