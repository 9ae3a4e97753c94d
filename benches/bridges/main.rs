//! X1-X3: the bridges against their raw clients, in one run (see `shared/BENCHMARKS.md`).
//!
//! Run with `cargo bench -p dataflow-benches --bench bridges` (a few minutes on a 2-core VM, after the build). The
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
//!
//! Layout, a module per concept: `servers` starts redis-server and tansu; `redis_raw` and
//! `kafka_raw` are the raw clients (the peers of the bridges); `workload` holds what every
//! peer shares (constants, records); `prime` keeps the Kafka group join out of the clock;
//! `throughput` and `latency` (with `recorder`, the reader's side) are the runs; `cpu_use`
//! accounts the CPU of a run; `report` prints the tables and `verdicts` the targets;
//! `repartition` runs a pipeline with and without a `key_by` (`BENCH_PIPELINE_RECORDS`,
//! default 20 000, on 4 partitions) on both backends, from the first send to the last record
//! out, and prints the same-round ratio (target on Kafka: keyed within 4x). The
//! helpers the benches share are in `benches/common/`.

#[path = "../common/mod.rs"]
mod common;
mod cpu_use;
mod kafka_raw;
mod latency;
mod peer;
mod prime;
mod recorder;
mod redis_raw;
mod repartition;
mod report;
mod servers;
mod throughput;
mod verdicts;
mod workload;

use std::thread;
use std::time::Instant;

use common::cpu::loadavg;
use common::schedule::Schedule;
use common::settings::{bench_mode, env_or};
use kafka_raw::Kafka;
use latency::{Latency, kafka_latency, latency};
use peer::{PEERS, Peer, index};
use redis_raw::{Raw, Redis};
use servers::{RedisServer, Tansu};
use throughput::{Throughput, kafka_throughput, throughput};
use verdicts::verdicts;

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

    report::throughput_heading(records, kafka_records);
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
            report::throughput_row(round, peer, &run);
            throughputs[index(peer)].push(run);
        }
    }

    report::latency_heading(rate, seconds, warmup_ms);
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
            report::latency_row(round, peer, &run);
            latencies[index(peer)].push(run);
        }
    }

    let shape_records: u64 = env_or(
        "BENCH_PIPELINE_RECORDS",
        if bench_mode { 20_000 } else { 500 },
    );
    repartition::heading(shape_records);
    let mut shapes = Vec::new();
    for round in 0..rounds {
        let mut backends = vec![("redis", redis.url.clone())];
        if let Some(kafka) = &kafka {
            backends.push(("kafka", kafka.url.clone()));
        }
        let mut order = [repartition::Shape::Unkeyed, repartition::Shape::Keyed];
        if round % 2 == 1 {
            order.reverse();
        }
        for (backend, url) in &backends {
            for shape in order {
                let tag = format!("x-shape-{backend}-{shape:?}-{round}").to_lowercase();
                let run = rt.block_on(repartition::shape_run(
                    backend,
                    url,
                    shape,
                    &tag,
                    shape_records,
                ));
                repartition::row(round, &run);
                shapes.push(run);
            }
        }
    }

    let overheads = report::summarize_throughput(&throughputs);
    let p99 = report::summarize_latency(rate, &latencies);
    report::summarize_joins(&throughputs, &latencies);
    verdicts(&overheads, &p99);
    repartition::summarize(&shapes);
    println!("\nLoad average {} at the end.", loadavg());
    drop(rt);
    drop(kafka);
    drop(redis);
}
