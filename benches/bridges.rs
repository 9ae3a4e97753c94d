//! X1-X3: the bridges against their raw clients, in one run (see `shared/BENCHMARKS.md`).
//!
//! Run with `cargo bench --bench bridges` (a few minutes on a 2-core VM, after the build). The
//! bench starts its own `redis-server` (from the `PATH`, or env `REDIS_SERVER`) on a free
//! loopback port, without persistence, and kills it at the end; without the binary it prints
//! why and exits 0. Likewise a `tansu` Kafka-protocol broker (env `TANSU`, else
//! `$HOME/.cache/dataflow-ci/tansu-libsql/bin/tansu`, else the `PATH`) with in-memory storage; without
//! it the Kafka peers are skipped (printed) and the rest runs.
//!
//! Peers, interleaved round by round (A B C, B C A, C A B, ...):
//!
//! - `mem`: the embedded broker through `Connection::open("mem://")` (X1, the reference);
//! - `bridge`: the Redis Streams bridge through `Connection::open("redis://...")` (X2);
//! - `raw`: the `redis` crate doing what the bridge does, by hand: `XADD` pipelines on one
//!   multiplexed connection, `XREADGROUP GROUP g c COUNT 100 BLOCK 200` on a second one whose
//!   response timeout (2 s) is longer than the block, `XACK` on the first;
//! - `kafka bridge`: the Kafka bridge through `Connection::open("kafka://...")` (X3);
//! - `kafka raw`: `rdkafka` with the bridge's settings (idempotent `FutureProducer`, `acks=all`;
//!   `StreamConsumer` in a group, manual commits, `fetch.wait.max.ms=100`), doing what the
//!   bridge does: a batch enqueued, then all its acknowledgements awaited; reads of up to 100
//!   records (the first awaited, then what is already there); a synchronous commit per batch
//!   off the async workers.
//!
//! Every Kafka run has its own topic and consumer group, and starts with a "prime" record
//! sent and read back (and committed) before the clock starts: the group join and first
//! assignment stay out of the measurements (their time is printed). `BENCH_KAFKA_RECORDS`
//! (default: `BENCH_RECORDS`) sets the Kafka throughput runs' count. In the latency runs up to
//! `IN_FLIGHT` (32) sends await their acknowledgements at once (one awaited send takes at least
//! librdkafka's `linger.ms`, 5 ms): the bridge's from as many `TopicProducer`s of one
//! `Connection` (one librdkafka producer), each send polled once on the sending thread, so
//! records are enqueued in order.
//!
//! Every record is `BENCH_RECORD_BYTES` bytes (default 64; X2 in `BENCHMARKS.md` names 256)
//! in a `Vec<u8>` whose first 8 bytes are a sequence number or a send time (the bridge's
//! bincode adds a length byte: 65 bytes on the wire against the raw client's 64). One topic,
//! one partition, one consumer group.
//!
//! 1. Throughput: `BENCH_RECORDS` records (default 100 000) written in batches of 100 by a
//!    producer task while a consumer task of a fresh group reads them (up to 100 per read)
//!    and acknowledges (commits) each batch; the time runs from the first write to the last
//!    acknowledgement. Reported: records/s, the producer's own rate, CPU time per record of
//!    this process (all threads) and of the server (`redis-server` or `tansu`), and per
//!    round the ratio bridge / raw (overhead = raw rate / bridge rate - 1: the extra time per
//!    record).
//! 2. Latency: one record per send at `BENCH_RATE` records/s (default 1 000) for
//!    `BENCH_SECONDS` (default 3) after a `BENCH_WARMUP_MS` (default 200) warm-up that is not
//!    recorded, open loop: the main thread sends record `i` at its intended time
//!    `t0 + i / rate` and the record carries that time in nanoseconds; the reader (a tokio
//!    task) records `receive time - intended time` in an HDR histogram, then commits. p50, p99,
//!    p99.9 and max in microseconds, and the ratios of Redis's and Kafka's p99 to the
//!    embedded broker's.
//!    Also printed: how late the sending thread started its sends (p99; a delay there is in
//!    every peer's latency), the p99 measured from the moment the send started (the record
//!    carries that time too: the transport alone, without the sender's delays), and the cores
//!    other processes kept busy during the run (from `/proc/stat`): on a shared machine much
//!    of the tail is theirs.
//!
//! Every run checks its records: all of them, once each, in order (on Redis also `XLEN` and an
//! empty pending list after the acknowledgements; on Kafka the group's committed offset, the
//! count + 1 for the prime record); a run that lost or repeated one panics.
//! tokio runs with 2 worker threads; `BENCH_ROUNDS` (default 5) rounds. Printed: every run,
//! then medians over rounds with [min, max], then the verdicts against the targets.
//! `cargo test --benches` runs one tiny round as a smoke test.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::Poll;
use std::thread;
use std::time::{Duration, Instant};

use common::cpu::{live_threads_cpu_ns, loadavg, machine_busy_ns};
use common::schedule::{Schedule, now_ns};
use common::settings::{bench_mode, env_or};
use common::stats::{latency_histogram, median, spread, us};
use dataflow::TopicSpec;
use dataflow::backend::{Connection, TopicProducer, TopicReader};
use futures_util::{FutureExt, StreamExt};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadOptions;
use redis::{AsyncConnectionConfig, AsyncTypedCommands, Value};

/// Records per write, and at most per read.
const BATCH: u64 = 100;
/// The consumer group of every run.
const GROUP: &str = "bench";
/// `BLOCK` of the raw client's reads, and the wait of the bridge's `recv_batch`.
const READ_WAIT: Duration = Duration::from_millis(200);
/// A run that has not seen all its records by then has lost some.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// Peers, in the order of the first round.
const PEERS: [Peer; 5] = [
    Peer::Mem,
    Peer::Bridge,
    Peer::Raw,
    Peer::KafkaBridge,
    Peer::KafkaRaw,
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    /// The embedded broker through `Connection` (X1).
    Mem,
    /// The Redis Streams bridge through `Connection` (X2).
    Bridge,
    /// The raw `redis` client (X2's peer).
    Raw,
    /// The Kafka bridge through `Connection`, on a local tansu (X3).
    KafkaBridge,
    /// The raw `rdkafka` client (X3's peer).
    KafkaRaw,
}

impl Peer {
    fn label(self) -> &'static str {
        match self {
            Peer::Mem => "mem:// (X1)",
            Peer::Bridge => "redis bridge (X2)",
            Peer::Raw => "redis raw client",
            Peer::KafkaBridge => "kafka bridge (X3)",
            Peer::KafkaRaw => "kafka raw client",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Peer::Mem => "mem",
            Peer::Bridge => "bridge",
            Peer::Raw => "raw",
            Peer::KafkaBridge => "kbridge",
            Peer::KafkaRaw => "kraw",
        }
    }

    fn is_kafka(self) -> bool {
        matches!(self, Peer::KafkaBridge | Peer::KafkaRaw)
    }
}

// ---------------------------------------------------------------------------------------
// Records

/// A record of `size` bytes carrying `stamp` (a sequence number or a send time).
fn record(stamp: u64, size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size];
    bytes[..8].copy_from_slice(&stamp.to_le_bytes());
    for (i, b) in bytes.iter_mut().enumerate().skip(8) {
        *b = (stamp as u8).wrapping_add(i as u8);
    }
    bytes
}

/// A latency record: its intended send time, then the time its send started.
fn timed_record(intended: u64, started: u64, size: usize) -> Vec<u8> {
    let mut bytes = record(intended, size);
    bytes[8..16].copy_from_slice(&started.to_le_bytes());
    bytes
}

/// The stamp of a record, after checking its size.
fn stamp(bytes: &[u8], size: usize) -> u64 {
    assert_eq!(bytes.len(), size, "a record of the wrong size came back");
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

// ---------------------------------------------------------------------------------------
// The Redis server and the raw client

/// `redis-server` on a free loopback port, without persistence; killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    fn start() -> Option<Self> {
        let binary = std::env::var_os("REDIS_SERVER")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::split_paths(&std::env::var_os("PATH")?)
                    .map(|dir| dir.join("redis-server"))
                    .find(|candidate| candidate.is_file())
            })?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let dir =
            std::env::temp_dir().join(format!("dataflow-bridges-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("server directory");
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Self { child, port, dir };
        server.wait_ready();
        Some(server)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut reply = [0u8; 64];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read(&mut reply).is_ok_and(|n| n > 0)
                    && reply.starts_with(b"+PONG")
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU counters at one moment: this process, the server, the whole machine.
#[derive(Clone, Copy)]
struct CpuSample {
    at: Instant,
    client_ns: u64,
    server_ns: u64,
    machine_ns: u64,
}

/// CPU used between two samples.
#[derive(Clone, Copy)]
struct CpuUse {
    client_ns: u64,
    server_ns: u64,
    /// Cores kept busy by every other process, on average (other builds and tests on a
    /// shared machine: the noise).
    others_cores: f64,
}

impl CpuSample {
    /// `server`: the process id of the broker the run uses.
    fn take(server: u32) -> Self {
        Self {
            at: Instant::now(),
            client_ns: live_threads_cpu_ns("self"),
            server_ns: live_threads_cpu_ns(&server.to_string()),
            machine_ns: machine_busy_ns(),
        }
    }

    fn until(&self, later: &Self) -> CpuUse {
        let client_ns = later.client_ns.saturating_sub(self.client_ns);
        let server_ns = later.server_ns.saturating_sub(self.server_ns);
        let others = later
            .machine_ns
            .saturating_sub(self.machine_ns)
            .saturating_sub(client_ns + server_ns);
        CpuUse {
            client_ns,
            server_ns,
            others_cores: others as f64 / (later.at - self.at).as_nanos().max(1) as f64,
        }
    }
}

/// The raw client's two connections: commands (`XADD`, `XACK`, checks), and blocking reads.
#[derive(Clone)]
struct Raw {
    commands: MultiplexedConnection,
    blocking: MultiplexedConnection,
}

impl Raw {
    async fn connect(url: &str) -> Self {
        let client = redis::Client::open(url).expect("redis url");
        let commands = client
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .expect("raw command connection");
        // Longer than BLOCK: the client's default of 500 ms would cut a blocked read.
        let blocking = client
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new()
                    .set_response_timeout(Some(READ_WAIT * 10))
                    .set_connection_timeout(Some(Duration::from_secs(2))),
            )
            .await
            .expect("raw blocking connection");
        Self { commands, blocking }
    }

    /// Checks that stream `key` holds `n` entries, none pending in the group, then deletes
    /// `key` and `extra` keys.
    async fn check_and_drop(&self, key: &str, n: u64, extra: &[String]) {
        let mut con = self.commands.clone();
        let len = con.xlen(key).await.expect("XLEN");
        assert_eq!(
            len as u64, n,
            "{key}: the stream holds {len} entries, not {n}"
        );
        let pending = con.xpending(key, GROUP).await.expect("XPENDING").count();
        assert_eq!(
            pending, 0,
            "{key}: {pending} entries were never acknowledged"
        );
        let mut keys = vec![key.to_owned()];
        keys.extend_from_slice(extra);
        con.del(keys).await.expect("DEL");
    }
}

/// What a Redis peer needs.
struct Redis {
    server: RedisServer,
    url: String,
    raw: Raw,
}

/// Keys the bridge keeps for `topic` besides its stream (lease keys go when the reader
/// leaves).
fn bridge_keys(topic: &str) -> Vec<String> {
    vec![
        format!("dataflow:topic:{topic}"),
        format!("dataflow:members:{GROUP}:{topic}"),
    ]
}

// ---------------------------------------------------------------------------------------
// The Kafka broker (tansu) and the raw rdkafka client

/// A `tansu` broker (Kafka protocol) on a free loopback port with in-memory storage, as a
/// child process; killed on drop (its log is kept if the bench panicked).
struct Tansu {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Tansu {
    /// Starts the broker, or `None` when the binary is missing (`$TANSU`, then
    /// `$HOME/.cache/dataflow-ci/tansu-libsql/bin/tansu`, then the `PATH`).
    fn start() -> Option<Self> {
        let binary = std::env::var_os("TANSU")
            .map(PathBuf::from)
            .or_else(|| {
                let home = PathBuf::from(std::env::var_os("HOME")?);
                Some(home.join(".cache/dataflow-ci/tansu-libsql/bin/tansu"))
            })
            .filter(|p| p.is_file())
            .or_else(|| {
                std::env::split_paths(&std::env::var_os("PATH")?)
                    .map(|dir| dir.join("tansu"))
                    .find(|candidate| candidate.is_file())
            })?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let log = std::env::temp_dir().join(format!(
            "dataflow-bridges-tansu-{}-{port}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).expect("a log file for tansu");
        let err = out.try_clone().expect("a second handle on the log");
        let listener = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&binary)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut broker = Self { child, port, log };
        // Accepting connections is enough: Kafka requests are served from then on.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("tansu exited ({status}); log: {}", broker.log.display());
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen within 30 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
        Some(broker)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("tansu log kept: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// What a Kafka peer needs.
struct Kafka {
    broker: Tansu,
    /// `kafka://127.0.0.1:PORT`, for the bridge.
    url: String,
    /// `127.0.0.1:PORT`, for the raw client.
    bootstrap: String,
    admin: AdminClient<DefaultClientContext>,
}

/// The first record of every Kafka run, sent and read back before the clock starts: the
/// group join and first assignment (1-20 s on tansu) stay out of the measurements.
const PRIME: u64 = u64::MAX;
/// How long a Kafka consumer may take to join its group and read the first record.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);
/// Sends in flight at once in a Kafka latency run (see `kafka_latency`).
const IN_FLIGHT: usize = 32;

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
fn raw_kafka_producer(bootstrap: &str) -> FutureProducer {
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
fn raw_enqueue(producer: &FutureProducer, topic: &str, value: &[u8]) -> Option<DeliveryFuture> {
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
async fn raw_delivered(delivery: DeliveryFuture) {
    match delivery.await {
        Ok(Ok(_)) => {}
        Ok(Err((error, _))) => panic!("raw send failed: {error}"),
        Err(_canceled) => panic!("raw send canceled"),
    }
}

/// Sends `values` to partition 0 of `topic` and waits until all are acknowledged (what the
/// bridge's producer does with a batch).
async fn raw_send_batch(
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
async fn raw_batch(consumer: &StreamConsumer, max: usize, wait: Duration) -> Vec<(i64, Vec<u8>)> {
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
async fn raw_commit(consumer: &Arc<StreamConsumer>, topic: &str, next: i64) {
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
async fn raw_close(consumer: Arc<StreamConsumer>) {
    tokio::task::spawn_blocking(move || {
        consumer.unsubscribe();
        drop(consumer);
    })
    .await
    .expect("close task");
}

impl Kafka {
    fn new(broker: Tansu) -> Self {
        let bootstrap = format!("127.0.0.1:{}", broker.port);
        let admin = raw_kafka_config(&bootstrap).create().expect("admin client");
        Self {
            url: format!("kafka://{bootstrap}"),
            bootstrap,
            broker,
            admin,
        }
    }

    /// Creates `topic` with one partition (for the raw client; the bridge creates its own).
    async fn create_topic(&self, topic: &str) {
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
    fn raw_consumer(&self, topic: &str, group: &str) -> Arc<StreamConsumer> {
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
    async fn check_and_drop(&self, topic: &str, group: &str, n: u64) {
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

/// The consumer group of a Kafka run: its own per run, so that no run waits for the last
/// one's members to leave.
fn kafka_group(topic: &str) -> String {
    format!("{GROUP}-{topic}")
}

/// Sends the prime record through the bridge and reads it back (the join and the first
/// assignment happen here); returns how long that took.
async fn prime_bridge(
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
async fn prime_raw(
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

// ---------------------------------------------------------------------------------------
// Throughput

/// One throughput run.
struct Throughput {
    records: u64,
    seconds: f64,
    producer_seconds: f64,
    cpu: CpuUse,
    /// Kafka: the group join and the prime record, before the clock started.
    joined: Option<Duration>,
}

impl Throughput {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

/// Reads `n` records in order from `next`, panicking on anything else.
fn check_next(next: &mut u64, value: &[u8], size: usize) {
    let got = stamp(value, size);
    assert_eq!(got, *next, "record {next} expected, record {got} came");
    *next += 1;
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
    let (done, mut reader) = consume.await.expect("consumer task");
    let run = Throughput {
        records: n,
        seconds: (done - start).as_secs_f64(),
        producer_seconds: (produced - start).as_secs_f64(),
        cpu: cpu.until(&CpuSample::take(server)),
        joined,
    };
    let extra = reader
        .recv_batch(BATCH as usize, drain_wait)
        .await
        .expect("recv_batch");
    assert!(extra.is_empty(), "{} records more than sent", extra.len());
    reader.leave().await.expect("leave");
    run
}

async fn throughput(peer: Peer, redis: &Redis, topic: &str, n: u64, size: usize) -> Throughput {
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
                    let options = StreamReadOptions::default()
                        .group(GROUP, "raw-1")
                        .count(BATCH as usize)
                        .block(READ_WAIT.as_millis() as usize);
                    let mut next = 0;
                    let mut ids = Vec::with_capacity(BATCH as usize);
                    while next < n {
                        assert!(start.elapsed() < RUN_DEADLINE, "{n} sent, {next} read");
                        let reply = reads
                            .xread_options(&[&key], &[">"], &options)
                            .await
                            .expect("XREADGROUP");
                        ids.clear();
                        for stream in reply.map(|r| r.keys).unwrap_or_default() {
                            for mut entry in stream.ids {
                                let Some(Value::BulkString(payload)) = entry.map.remove("payload")
                                else {
                                    panic!("entry {} has no payload", entry.id);
                                };
                                check_next(&mut next, &payload, size);
                                ids.push(entry.id);
                            }
                        }
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
async fn kafka_throughput(
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

// ---------------------------------------------------------------------------------------
// Latency

/// Reads `expected` records through `reader` into `rec`, committing each batch, then checks
/// that nothing more arrives within `drain_wait` and leaves the group.
async fn record_latencies(
    mut reader: TopicReader<Vec<u8>>,
    mut rec: Recorder,
    expected: u64,
    drain_wait: Duration,
) -> Recorder {
    while !rec.done(expected) {
        let batch = reader
            .recv_batch(BATCH as usize, READ_WAIT)
            .await
            .expect("recv_batch");
        for received in &batch {
            rec.record(received.value.as_ref().expect("decodes"));
        }
        reader.commit().await.expect("commit");
    }
    let extra = reader
        .recv_batch(BATCH as usize, drain_wait)
        .await
        .expect("recv_batch");
    assert!(extra.is_empty(), "{} records more than sent", extra.len());
    reader.leave().await.expect("leave");
    rec
}

/// The reader's side of a latency run.
struct Recorder {
    schedule: Schedule,
    size: usize,
    /// From the intended send time (the latency).
    hist: Histogram<u64>,
    /// From the moment the send started (without the sending thread's own delays).
    from_send: Histogram<u64>,
    received: u64,
    last: Option<u64>,
}

impl Recorder {
    fn new(schedule: Schedule, size: usize) -> Self {
        Self {
            schedule,
            size,
            hist: latency_histogram(),
            from_send: latency_histogram(),
            received: 0,
            last: None,
        }
    }

    fn record(&mut self, value: &[u8]) {
        let now = now_ns(self.schedule.base);
        let intended = stamp(value, self.size);
        assert!(
            self.last.is_none_or(|last| intended > last),
            "a record came twice or out of order"
        );
        self.last = Some(intended);
        self.received += 1;
        if intended >= self.schedule.record_from {
            self.hist
                .saturating_record(now.saturating_sub(intended).max(1));
            let started = u64::from_le_bytes(value[8..16].try_into().expect("8 bytes"));
            self.from_send
                .saturating_record(now.saturating_sub(started).max(1));
        }
    }

    fn done(&self, expected: u64) -> bool {
        assert!(
            now_ns(self.schedule.base) < self.schedule.end + RUN_DEADLINE.as_nanos() as u64,
            "{expected} sent, {} received",
            self.received
        );
        self.received >= expected
    }
}

/// One latency run.
struct Latency {
    sent: u64,
    hist: Histogram<u64>,
    /// From the moment each send started.
    from_send: Histogram<u64>,
    /// How late the sends started.
    late: Histogram<u64>,
    cpu: CpuUse,
    /// Kafka: the group join and the prime record, before the schedule started.
    joined: Option<Duration>,
}

fn latency(
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
                    let options = StreamReadOptions::default()
                        .group(GROUP, "raw-1")
                        .count(BATCH as usize)
                        .block(READ_WAIT.as_millis() as usize);
                    let mut rec = Recorder::new(schedule, size);
                    let mut ids = Vec::new();
                    while !rec.done(expected) {
                        let reply = reads
                            .xread_options(&[&key], &[">"], &options)
                            .await
                            .expect("XREADGROUP");
                        ids.clear();
                        for stream in reply.map(|r| r.keys).unwrap_or_default() {
                            for mut entry in stream.ids {
                                let Some(Value::BulkString(payload)) = entry.map.remove("payload")
                                else {
                                    panic!("entry {} has no payload", entry.id);
                                };
                                rec.record(&payload);
                                ids.push(entry.id);
                            }
                        }
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
fn kafka_latency(
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

// ---------------------------------------------------------------------------------------
// Reporting

fn index(peer: Peer) -> usize {
    PEERS.iter().position(|p| *p == peer).expect("peer")
}

const QUANTILES: &[(&str, f64)] = &[("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)];

/// `f(run of a, run of b)` for every round, empty if either peer did not run.
fn same_round<R>(runs: &[Vec<R>], a: Peer, b: Peer, f: impl Fn(&R, &R) -> f64) -> Vec<f64> {
    runs[index(a)]
        .iter()
        .zip(&runs[index(b)])
        .map(|(a, b)| f(a, b))
        .collect()
}

/// Medians over rounds of each bridge's throughput overhead over its raw client, in percent.
struct Overheads {
    redis: f64,
    /// `None` when the Kafka peers did not run.
    kafka: Option<f64>,
}

fn summarize_throughput(runs: &[Vec<Throughput>]) -> Overheads {
    println!("\n### Throughput: median [min, max] over rounds\n");
    println!(
        "| peer | records/run | records/s | producer records/s | client CPU ns/rec | server CPU ns/rec | other load (cores) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (peer, runs) in PEERS.iter().zip(runs) {
        if runs.is_empty() {
            continue;
        }
        let rates: Vec<f64> = runs.iter().map(Throughput::rate).collect();
        let producer: Vec<f64> = runs
            .iter()
            .map(|r| r.records as f64 / r.producer_seconds)
            .collect();
        let client: Vec<f64> = runs
            .iter()
            .map(|r| r.cpu.client_ns as f64 / r.records as f64)
            .collect();
        let server: Vec<f64> = runs
            .iter()
            .map(|r| r.cpu.server_ns as f64 / r.records as f64)
            .collect();
        let others: Vec<f64> = runs.iter().map(|r| r.cpu.others_cores).collect();
        let int = |v: f64| format!("{v:.0}");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            peer.label(),
            runs[0].records,
            spread(&rates, int),
            spread(&producer, int),
            spread(&client, int),
            spread(&server, int),
            spread(&others, |v| format!("{v:.2}")),
        );
    }
    println!("\nSame-round ratios, median [min, max]:\n");
    let mut overheads = Vec::new();
    for (bridge, raw, name) in [
        (Peer::Bridge, Peer::Raw, "redis"),
        (Peer::KafkaBridge, Peer::KafkaRaw, "kafka"),
    ] {
        let ratio = same_round(runs, bridge, raw, |a, b| a.rate() / b.rate());
        if ratio.is_empty() {
            overheads.push(None);
            continue;
        }
        let overhead: Vec<f64> = ratio.iter().map(|r| (1.0 / r - 1.0) * 100.0).collect();
        println!(
            "- {name} bridge / raw records/s: {} (overhead, raw rate / bridge rate - 1: {})",
            spread(&ratio, |v| format!("{v:.2}")),
            spread(&overhead, |v| format!("{v:.1}%")),
        );
        overheads.push(Some(median(&overhead)));
    }
    for raw in [Peer::Raw, Peer::KafkaRaw] {
        let ratio = same_round(runs, Peer::Mem, raw, |a, b| a.rate() / b.rate());
        if !ratio.is_empty() {
            println!(
                "- mem / {} records/s: {}",
                raw.label(),
                spread(&ratio, |v| format!("{v:.1}x"))
            );
        }
    }
    Overheads {
        redis: overheads[0].expect("the Redis peers always run"),
        kafka: overheads[1],
    }
}

/// How long the Kafka runs took to join their groups and read the prime record (not timed).
fn summarize_joins(throughputs: &[Vec<Throughput>], latencies: &[Vec<Latency>]) {
    let mut lines = Vec::new();
    for peer in PEERS.iter().filter(|p| p.is_kafka()) {
        let joins: Vec<f64> = throughputs[index(*peer)]
            .iter()
            .filter_map(|r| r.joined)
            .chain(latencies[index(*peer)].iter().filter_map(|r| r.joined))
            .map(|d| d.as_secs_f64())
            .collect();
        if !joins.is_empty() {
            lines.push(format!(
                "- {}: {} s over {} runs",
                peer.label(),
                spread(&joins, |v| format!("{v:.2}")),
                joins.len()
            ));
        }
    }
    if !lines.is_empty() {
        println!(
            "\n### Kafka: group join and prime record, before each run's clock, median [min, max]\n"
        );
        println!("{}", lines.join("\n"));
    }
}

fn summarize_latency(rate: u64, runs: &[Vec<Latency>]) -> Vec<P99Ratio> {
    println!("\n### Latency at {rate} records/s: median [min, max] over rounds, us\n");
    println!(
        "| peer | recorded/round | p50 | p99 | p99.9 | max (largest) | p99 from send | send late p99 | other load (cores) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (peer, runs) in PEERS.iter().zip(runs) {
        if runs.is_empty() {
            continue;
        }
        let counts: Vec<f64> = runs.iter().map(|r| r.hist.len() as f64).collect();
        let mut line = format!("| {} | {:.0} |", peer.label(), median(&counts));
        for (_, q) in QUANTILES {
            let v: Vec<f64> = runs
                .iter()
                .map(|r| r.hist.value_at_quantile(*q) as f64)
                .collect();
            line.push_str(&format!(" {} |", spread(&v, |ns| us(ns as u64))));
        }
        let max = runs.iter().map(|r| r.hist.max()).max().unwrap_or(0);
        let others: Vec<f64> = runs.iter().map(|r| r.cpu.others_cores).collect();
        let late: Vec<f64> = runs
            .iter()
            .map(|r| r.late.value_at_quantile(0.99) as f64)
            .collect();
        let from_send: Vec<f64> = runs
            .iter()
            .map(|r| r.from_send.value_at_quantile(0.99) as f64)
            .collect();
        line.push_str(&format!(
            " {} | {} | {} | {} |",
            us(max),
            spread(&from_send, |ns| us(ns as u64)),
            spread(&late, |ns| us(ns as u64)),
            spread(&others, |v| format!("{v:.2}"))
        ));
        println!("{line}");
    }
    let ratio_of = |pick: fn(&Latency) -> &Histogram<u64>, a: Peer, b: Peer, q: f64| -> Vec<f64> {
        same_round(runs, a, b, |a, b| {
            pick(a).value_at_quantile(q) as f64 / pick(b).value_at_quantile(q).max(1) as f64
        })
    };
    let ratio = |a, b, q| ratio_of(|r| &r.hist, a, b, q);
    let ratio_from_send = |a, b, q| ratio_of(|r| &r.from_send, a, b, q);
    println!("\nSame-round ratios, median [min, max]:\n");
    println!("| ratio | p50 | p99 | p99.9 | p99 from send |");
    println!("|---|---:|---:|---:|---:|");
    for (a, b) in [
        (Peer::Bridge, Peer::Mem),
        (Peer::Raw, Peer::Mem),
        (Peer::Bridge, Peer::Raw),
        (Peer::KafkaBridge, Peer::Mem),
        (Peer::KafkaRaw, Peer::Mem),
        (Peer::KafkaBridge, Peer::KafkaRaw),
    ] {
        if runs[index(a)].is_empty() || runs[index(b)].is_empty() {
            continue;
        }
        let mut line = format!("| {} / {} |", a.short(), b.short());
        for (_, q) in QUANTILES {
            line.push_str(&format!(
                " {} |",
                spread(&ratio(a, b, *q), |v| format!("{v:.2}x"))
            ));
        }
        line.push_str(&format!(
            " {} |",
            spread(&ratio_from_send(a, b, 0.99), |v| format!("{v:.2}x"))
        ));
        println!("{line}");
    }
    PEERS
        .iter()
        .filter(|p| **p != Peer::Mem && !runs[index(**p)].is_empty())
        .map(|&peer| P99Ratio {
            peer,
            p99: median(&ratio(peer, Peer::Mem, 0.99)),
            from_send: median(&ratio_from_send(peer, Peer::Mem, 0.99)),
        })
        .collect()
}

/// Median over rounds of a peer's p99 over the embedded broker's, same round.
struct P99Ratio {
    peer: Peer,
    p99: f64,
    /// The same, measured from the moment each send started.
    from_send: f64,
}

fn verdicts(overheads: &Overheads, p99: &[P99Ratio]) {
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    let band = |overhead: f64| {
        if overhead <= 10.0 {
            "met (within 10%)"
        } else if overhead <= 25.0 {
            "met at the 25% end, missed at the 10% end"
        } else {
            "MISSED (over 25%)"
        }
    };
    println!("\n### Against the targets (BENCHMARKS.md), medians over rounds\n");
    println!(
        "- X2 bridge throughput overhead over the raw client: {:.1}% (target <= 10-25%): {}",
        overheads.redis,
        band(overheads.redis)
    );
    match overheads.kafka {
        Some(overhead) => println!(
            "- X3 bridge throughput overhead over the raw client: {overhead:.1}% (target <= 10-25%): {}",
            band(overhead)
        ),
        None => println!("- X3 Kafka: not measured (tansu not found)"),
    }
    for r in p99 {
        let (id, target) = if r.peer.is_kafka() {
            ("X3", 1000.0)
        } else {
            ("X2", 100.0)
        };
        println!(
            "- {id} {} p99 / embedded p99: {:.1}x (target >= {target:.0}x): {} (from the send: {:.1}x)",
            r.peer.label(),
            r.p99,
            met(r.p99 >= target),
            r.from_send
        );
    }
}

fn main() {
    // Without `--bench` this is `cargo test --benches`: a tiny smoke run.
    let bench_mode = bench_mode();
    let rounds: usize = env_or("BENCH_ROUNDS", if bench_mode { 5 } else { 1 }).max(1);
    let records: u64 = env_or("BENCH_RECORDS", if bench_mode { 100_000 } else { 1_000 });
    let kafka_records: u64 = env_or("BENCH_KAFKA_RECORDS", records);
    let seconds: f64 = env_or("BENCH_SECONDS", if bench_mode { 3.0 } else { 0.2 });
    let rate: u64 = env_or("BENCH_RATE", 1_000).max(1);
    let warmup_ms: u64 = env_or("BENCH_WARMUP_MS", if bench_mode { 200 } else { 20 });
    let size: usize = env_or("BENCH_RECORD_BYTES", 64).max(16);

    let Some(server) = RedisServer::start() else {
        println!("bridges: skipped, redis-server not found (install it, or set REDIS_SERVER)");
        return;
    };
    let kafka = Tansu::start().map(Kafka::new);
    if kafka.is_none() {
        println!(
            "bridges: the Kafka peers (X3) are skipped, tansu not found ($TANSU, \
             ~/.cache/dataflow-ci/tansu-libsql/bin/tansu, PATH)"
        );
    }
    let peers: Vec<Peer> = PEERS
        .iter()
        .copied()
        .filter(|p| kafka.is_some() || !p.is_kafka())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let url = server.url();
    let raw = rt.block_on(Raw::connect(&url));
    let redis = Redis { server, url, raw };
    println!(
        "# X1-X3 bridges, {rounds} rounds, records of {size} bytes, redis-server on {}, {}, \
         {} cores, load average {} at the start\n",
        redis.url,
        kafka
            .as_ref()
            .map_or("no tansu".to_owned(), |k| format!("tansu on {}", k.url)),
        thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );

    println!(
        "## Throughput: {records} records ({kafka_records} on Kafka), batches of {BATCH}, read \
         by a group and acknowledged\n"
    );
    println!(
        "| round | peer | records | s | records/s | producer records/s | client CPU ns/rec | server CPU ns/rec | other load (cores) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut throughputs: Vec<Vec<Throughput>> = PEERS.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..peers.len() {
            let peer = peers[(round + k) % peers.len()];
            let topic = format!("x-tput-{}-{round}", peer.short());
            let run = match &kafka {
                Some(kafka) if peer.is_kafka() => {
                    rt.block_on(kafka_throughput(peer, kafka, &topic, kafka_records, size))
                }
                _ => rt.block_on(throughput(peer, &redis, &topic, records, size)),
            };
            println!(
                "| {round} | {} | {} | {:.3} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
                peer.label(),
                run.records,
                run.seconds,
                run.rate(),
                run.records as f64 / run.producer_seconds,
                run.cpu.client_ns as f64 / run.records as f64,
                run.cpu.server_ns as f64 / run.records as f64,
                run.cpu.others_cores,
            );
            throughputs[index(peer)].push(run);
        }
    }

    println!(
        "\n## Latency: 1 record per send at {rate} records/s for {seconds} s (+{warmup_ms} ms \
         warm-up not recorded), open loop, us\n"
    );
    println!(
        "| round | peer | sent | recorded | p50 | p99 | p99.9 | max | p99 from send | send late p99 | other load (cores) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let base = Instant::now();
    let mut latencies: Vec<Vec<Latency>> = PEERS.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..peers.len() {
            let peer = peers[(round + k) % peers.len()];
            let topic = format!("x-lat-{}-{round}", peer.short());
            // Start a little ahead, so that the reader is waiting (the Kafka peers move the
            // schedule to after their group join).
            let schedule = Schedule::new(base, 50_000_000, warmup_ms, seconds, rate);
            let run = match &kafka {
                Some(kafka) if peer.is_kafka() => {
                    kafka_latency(peer, &rt, kafka, &topic, schedule, size)
                }
                _ => latency(peer, &rt, &redis, &topic, schedule, size),
            };
            let mut line = format!(
                "| {round} | {} | {} | {} |",
                peer.label(),
                run.sent,
                run.hist.len()
            );
            for (_, q) in QUANTILES {
                line.push_str(&format!(" {} |", us(run.hist.value_at_quantile(*q))));
            }
            line.push_str(&format!(
                " {} | {} | {} | {:.2} |",
                us(run.hist.max()),
                us(run.from_send.value_at_quantile(0.99)),
                us(run.late.value_at_quantile(0.99)),
                run.cpu.others_cores
            ));
            println!("{line}");
            latencies[index(peer)].push(run);
        }
    }

    let overheads = summarize_throughput(&throughputs);
    let p99 = summarize_latency(rate, &latencies);
    summarize_joins(&throughputs, &latencies);
    verdicts(&overheads, &p99);
    println!("\nLoad average {} at the end.", loadavg());
    drop(rt);
    drop(kafka);
    drop(redis);
}
