//! Latency runs: one record per send on an open-loop schedule, for every peer.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use dataflow::TopicSpec;
use dataflow::backend::{Connection, TopicProducer};
use hdrhistogram::Histogram;
use redis::AsyncTypedCommands;

use crate::common::schedule::{Schedule, now_ns};
use crate::cpu_use::{CpuSample, CpuUse};
use crate::kafka_raw::{
    Kafka, raw_batch, raw_close, raw_commit, raw_delivered, raw_enqueue, raw_kafka_producer,
};
use crate::peer::Peer;
use crate::prime::{prime_bridge, prime_raw};
use crate::recorder::{Recorder, record_latencies};
use crate::redis_raw::{Redis, bridge_keys, for_each_payload, read_options};
use crate::workload::{BATCH, GROUP, READ_WAIT, kafka_group, timed_record};

/// Sends in flight at once in a Kafka latency run (see `kafka_latency`).
const IN_FLIGHT: usize = 32;

/// Polls `future` once on this thread, then leaves the rest to a task of `rt`. The Kafka
/// bridge's `send_batch` enqueues its records into librdkafka in its first poll and then
/// waits for the acknowledgement: so the records of successive calls are enqueued in the
/// order of the calls, while their acknowledgements are awaited concurrently.
fn start_then_spawn(
    rt: &tokio::runtime::Runtime,
    future: impl Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let _entered = rt.enter();
    let mut future = Box::pin(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(()) => None,
        Poll::Pending => Some(rt.spawn(future)),
    }
}

/// One latency run.
pub struct Latency {
    /// Records sent (all of the schedule's, warm-up included).
    pub sent: u64,
    /// From the intended send time (the latency), warm-up excluded.
    pub hist: Histogram<u64>,
    /// From the moment each send started.
    pub from_send: Histogram<u64>,
    /// How late the sends started.
    pub late: Histogram<u64>,
    /// CPU used while the records were sent and read.
    pub cpu: CpuUse,
    /// Kafka: the group join and the prime record, before the schedule started.
    pub joined: Option<Duration>,
}

/// One latency run of the embedded broker or a Redis peer; on Redis, the stream is checked
/// afterwards (every entry there, none pending).
pub fn latency(
    peer: Peer,
    rt: &tokio::runtime::Runtime,
    redis: &Redis,
    topic: &str,
    schedule: Schedule,
    size: usize,
) -> Latency {
    let expected = schedule.count();
    let (sent, late, recorder, cpu) = match peer {
        Peer::Mem | Peer::Bridge => {
            let url = if peer == Peer::Mem {
                "mem://"
            } else {
                &redis.url
            };
            let (mut producer, reader) = rt.block_on(async {
                let connection = Connection::open(url).await.expect("connection");
                let spec = TopicSpec::new(topic).partitions(1);
                let reader = connection
                    .reader::<Vec<u8>>(spec.clone(), GROUP)
                    .await
                    .expect("reader");
                let producer = connection
                    .producer::<Vec<u8>>(spec)
                    .await
                    .expect("producer");
                (producer, reader)
            });
            let consume = rt.spawn(record_latencies(
                reader,
                Recorder::new(schedule, size),
                expected,
                Duration::from_millis(20),
            ));
            let cpu = CpuSample::take(redis.server.pid());
            let (sent, late) = schedule.pace_noting_delays(|t, started| {
                rt.block_on(producer.send_batch(0, [timed_record(t, started, size)]))
                    .expect("send");
            });
            let rec = rt.block_on(consume).expect("reader task");
            let cpu = cpu.until(&CpuSample::take(redis.server.pid()));
            if peer == Peer::Bridge {
                let key = format!("{topic}:0");
                rt.block_on(redis.raw.check_and_drop(&key, sent, &bridge_keys(topic)));
            }
            (sent, late, rec, cpu)
        }
        Peer::Raw => {
            let key = format!("{topic}:0");
            let mut writes = redis.raw.commands.clone();
            rt.block_on(writes.xgroup_create_mkstream(&key, GROUP, "0"))
                .expect("XGROUP CREATE");
            let mut acks = writes.clone();
            let mut reads = redis.raw.blocking.clone();
            let consume = {
                let key = key.clone();
                rt.spawn(async move {
                    let options = read_options();
                    let mut rec = Recorder::new(schedule, size);
                    let mut ids = Vec::new();
                    while !rec.done(expected) {
                        let reply = reads
                            .xread_options(&[&key], &[">"], &options)
                            .await
                            .expect("XREADGROUP");
                        for_each_payload(reply, &mut ids, |payload| rec.record(payload));
                        if !ids.is_empty() {
                            acks.xack(&key, GROUP, &ids).await.expect("XACK");
                        }
                    }
                    rec
                })
            };
            let cpu = CpuSample::take(redis.server.pid());
            let (sent, late) = schedule.pace_noting_delays(|t, started| {
                let value = timed_record(t, started, size);
                rt.block_on(writes.xadd(&key, "*", &[("payload", value)]))
                    .expect("XADD");
            });
            let rec = rt.block_on(consume).expect("reader task");
            let cpu = cpu.until(&CpuSample::take(redis.server.pid()));
            rt.block_on(redis.raw.check_and_drop(&key, sent, &[]));
            (sent, late, rec, cpu)
        }
        Peer::KafkaBridge | Peer::KafkaRaw => unreachable!("see kafka_latency"),
    };
    Latency::checked(peer, expected, sent, late, recorder, cpu, None)
}

impl Latency {
    /// A run's figures, once it is checked that every record of the schedule was sent and
    /// received.
    fn checked(
        peer: Peer,
        expected: u64,
        sent: u64,
        late: Histogram<u64>,
        recorder: Recorder,
        cpu: CpuUse,
        joined: Option<Duration>,
    ) -> Self {
        assert_eq!(
            sent,
            expected,
            "{}: the schedule was not kept",
            peer.short()
        );
        assert_eq!(
            recorder.received,
            sent,
            "{}: records went missing",
            peer.short()
        );
        Self {
            sent,
            hist: recorder.hist,
            from_send: recorder.from_send,
            late,
            cpu,
            joined,
        }
    }
}
/// One latency run of a Kafka peer: as `latency`, but the schedule starts only after the
/// prime record came back (the group join is not timed), and up to `IN_FLIGHT` sends wait
/// for their acknowledgements at once: one send waits for `acks=all` after librdkafka's
/// `linger.ms` (5 ms by default), so a sender that waited for each could not keep 1 000
/// records/s. Records are still enqueued one after the other by the sending thread, in order.
pub fn kafka_latency(
    peer: Peer,
    rt: &tokio::runtime::Runtime,
    kafka: &Kafka,
    topic: &str,
    schedule: Schedule,
    size: usize,
) -> Latency {
    let group = kafka_group(topic);
    let server = kafka.broker.pid();
    let expected = schedule.count();
    let (sent, late, recorder, cpu, joined, schedule) = match peer {
        Peer::KafkaBridge => {
            let (producers, reader, joined) = rt.block_on(async {
                let connection = Connection::open(&kafka.url).await.expect("connection");
                let spec = TopicSpec::new(topic).partitions(1);
                let mut reader = connection
                    .reader::<Vec<u8>>(spec.clone(), &group)
                    .await
                    .expect("reader");
                // Producers of one connection share its librdkafka producer.
                let mut producers = Vec::with_capacity(IN_FLIGHT);
                for _ in 0..IN_FLIGHT {
                    let producer = connection
                        .producer::<Vec<u8>>(spec.clone())
                        .await
                        .expect("producer");
                    producers.push(producer);
                }
                let joined = prime_bridge(&mut producers[0], &mut reader, size).await;
                (producers, reader, joined)
            });
            let schedule = schedule.starting_at(now_ns(schedule.base) + 50_000_000);
            let consume = rt.spawn(record_latencies(
                reader,
                Recorder::new(schedule, size),
                expected,
                Duration::from_millis(200),
            ));
            let (free_tx, free_rx) = crossbeam_channel::bounded(IN_FLIGHT);
            for producer in producers {
                free_tx.send(producer).expect("a free producer");
            }
            let mut sends = Vec::new();
            let cpu = CpuSample::take(server);
            let (sent, late) = schedule.pace_noting_delays(|t, started| {
                // Waits only when IN_FLIGHT sends are unacknowledged (then the send is late).
                let mut producer: TopicProducer<Vec<u8>> = free_rx.recv().expect("a free producer");
                let free = free_tx.clone();
                let value = timed_record(t, started, size);
                sends.extend(start_then_spawn(rt, async move {
                    producer.send_batch(0, [value]).await.expect("send");
                    let _ = free.send(producer);
                }));
            });
            for send in sends {
                rt.block_on(send).expect("send task");
            }
            let rec = rt.block_on(consume).expect("reader task");
            let cpu = cpu.until(&CpuSample::take(server));
            (sent, late, rec, cpu, joined, schedule)
        }
        Peer::KafkaRaw => {
            // Inside the runtime: the clients start tasks on it.
            let (producer, consumer, joined) = rt.block_on(async {
                kafka.create_topic(topic).await;
                let producer = raw_kafka_producer(&kafka.bootstrap);
                let consumer = kafka.raw_consumer(topic, &group);
                let joined = prime_raw(&producer, &consumer, topic, size).await;
                (producer, consumer, joined)
            });
            let schedule = schedule.starting_at(now_ns(schedule.base) + 50_000_000);
            let consume = {
                let topic = topic.to_owned();
                let consumer = Arc::clone(&consumer);
                rt.spawn(async move {
                    let mut rec = Recorder::new(schedule, size);
                    while !rec.done(expected) {
                        let batch = raw_batch(&consumer, BATCH as usize, READ_WAIT).await;
                        let Some(&(last, _)) = batch.last() else {
                            continue;
                        };
                        for (_, value) in &batch {
                            rec.record(value);
                        }
                        raw_commit(&consumer, &topic, last + 1).await;
                    }
                    let extra =
                        raw_batch(&consumer, BATCH as usize, Duration::from_millis(200)).await;
                    assert!(extra.is_empty(), "{} records more than sent", extra.len());
                    rec
                })
            };
            let mut deliveries = Vec::new();
            let cpu = CpuSample::take(server);
            let (sent, late) = schedule.pace_noting_delays(|t, started| {
                let value = timed_record(t, started, size);
                let delivery = raw_enqueue(&producer, topic, &value).expect("room in the queue");
                deliveries.push(rt.spawn(raw_delivered(delivery)));
            });
            for delivery in deliveries {
                rt.block_on(delivery).expect("delivery task");
            }
            let rec = rt.block_on(consume).expect("reader task");
            let cpu = cpu.until(&CpuSample::take(server));
            rt.block_on(async {
                raw_close(consumer).await;
                tokio::task::spawn_blocking(move || drop(producer))
                    .await
                    .expect("producer drop");
            });
            (sent, late, rec, cpu, joined, schedule)
        }
        Peer::Mem | Peer::Bridge | Peer::Raw => unreachable!("{peer:?} is not a Kafka peer"),
    };
    debug_assert_eq!(schedule.count(), expected);
    let latency = Latency::checked(peer, expected, sent, late, recorder, cpu, Some(joined));
    // All records and the prime one, all committed.
    rt.block_on(kafka.check_and_drop(topic, &group, sent + 1));
    latency
}
