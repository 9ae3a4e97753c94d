//! P7 and recovery: what checkpoints cost a pipeline, and how long a restart takes to its first
//! new output (see `docs/checkpoints.md`).
//!
//! - **P7**: P1's pipeline (20 `map(|x| x)` stages over `BENCH_P7_RECORDS` records, 2 M by
//!   default, filled before `start()`, one segment) with checkpoints every second, every
//!   `BENCH_P7_FAST_MS` (20 by default: fifty times as often, a stress), and in effect never
//!   (every hour: only the last one, at the stop), in interleaved rounds; medians of the ratios
//!   to "never".
//! - **Recovery with state**: `key_by(x).count()` over `BENCH_KEYS` distinct keys (1 M), stopped
//!   cleanly (the last checkpoint holds every key), then started again on the same state
//!   directory: time from `start()` to the output of one new record, which needs the whole
//!   state restored first.
//! - **Recovery with a backlog**: `BENCH_BACKLOG` records (10 M) waiting in the source of P1's
//!   pipeline: time from `start()` to the first output, and to the last.
//!
//! Run: `cargo bench -p dataflow-benches --bench checkpoints`. `BENCH_ROUNDS` (5) rounds.

mod common;

use std::time::{Duration, Instant};

use common::settings::{bench_mode, env_or};
use common::stats::{median, spread};
use dataflow::broker::{Broker, Topic, TopicConfig};
use dataflow::{PipelineOptions, Sink, Source, pipeline};

#[pipeline]
fn identity20(input: Source<u64>, out: Sink<u64>) {
    input
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .map(|x: u64| x)
        .to(out);
}

#[pipeline]
fn counts(input: Source<u64>, out: Sink<(u64, u64)>) {
    input.key_by(|x: &u64| *x).count().to(out);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn filled(broker: &Broker, name: &str, n: u64) -> Topic<u64> {
    let topic = broker
        .topic::<u64>(name, TopicConfig::new())
        .expect("source topic");
    let producer = topic.producer();
    for chunk in (0..n).step_by(1 << 16) {
        let values: Vec<u64> = (chunk..(chunk + (1 << 16)).min(n)).collect();
        producer.send_batch_blocking(0, values).expect("fill");
    }
    topic
}

/// Waits until `topic` holds `n` records.
fn wait_for(topic: &Topic<impl Send + Sync + 'static>, n: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while topic.end_offsets().iter().sum::<u64>() < n {
        assert!(
            Instant::now() < deadline,
            "{what}: the sink never got {n} records"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// One run of P1's pipeline over `n` records with `every` between checkpoints.
fn p7_run(rt: &tokio::runtime::Runtime, n: u64, every: Duration) -> Duration {
    let broker = Broker::new();
    let input = filled(&broker, "in", n);
    let out = broker
        .topic::<u64>("out", TopicConfig::new())
        .expect("sink");
    let began = Instant::now();
    let running = rt
        .block_on(
            Identity20::builder()
                .input(input)
                .out(out.clone())
                .options(PipelineOptions::new().checkpoint_every(every))
                .start(),
        )
        .expect("start");
    wait_for(&out, n, "p7");
    let elapsed = began.elapsed();
    let metrics = rt.block_on(running.shutdown()).expect("shutdown");
    assert_eq!(out.end_offsets(), [n], "each record once: {metrics}");
    elapsed
}

fn p7(rt: &tokio::runtime::Runtime, rounds: usize) {
    let n: u64 = env_or("BENCH_P7_RECORDS", 2_000_000);
    let fast = Duration::from_millis(env_or("BENCH_P7_FAST_MS", 20));
    let modes = [
        ("never (1 h)", Duration::from_secs(3600)),
        ("every 1 s", Duration::from_secs(1)),
        ("every fast", fast),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for _ in 0..rounds {
        for (i, (_, every)) in modes.iter().enumerate() {
            times[i].push(p7_run(rt, n, *every).as_secs_f64());
        }
    }
    println!("P7: identity(20), {n} records, {rounds} interleaved rounds");
    for (i, (name, every)) in modes.iter().enumerate() {
        let ratios: Vec<f64> = times[i]
            .iter()
            .zip(&times[0])
            .map(|(t, base)| t / base)
            .collect();
        println!(
            "  {name:<12} ({every:?}): median {:.1} ms, {:.2} M records/s; ratio to never {}",
            median(&times[i]) * 1e3,
            n as f64 / median(&times[i]) / 1e6,
            spread(&ratios, |r| format!("{r:.3}"))
        );
    }
}

/// Restart with `keys` keys of state: time from `start()` to one new output.
fn recovery_with_state(rt: &tokio::runtime::Runtime, keys: u64) -> (Duration, u64) {
    let state = std::env::temp_dir().join(format!("dataflow-bench-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let broker = Broker::new();
    let input = filled(&broker, "in", keys);
    let out = broker
        .topic::<(u64, u64)>("out", TopicConfig::new())
        .expect("sink");
    let options = PipelineOptions::new()
        .group("recovery")
        .state_dir(&state)
        .checkpoint_every(Duration::from_secs(3600));
    let start = |options: PipelineOptions| {
        rt.block_on(
            Counts::builder()
                .input(input.clone())
                .out(out.clone())
                .options(options)
                .start(),
        )
        .expect("start")
    };
    let running = start(options.clone());
    wait_for(&out, keys, "recovery");
    rt.block_on(running.shutdown()).expect("shutdown");
    let size: u64 = std::fs::read_dir(&state)
        .expect("state dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let began = Instant::now();
    let running = start(options);
    input.producer().send_blocking(0).expect("one more record");
    wait_for(&out, keys + 1, "recovery");
    let elapsed = began.elapsed();
    rt.block_on(running.shutdown()).expect("shutdown");
    let _ = std::fs::remove_dir_all(&state);
    (elapsed, size)
}

/// Start with `backlog` records waiting: to the first output, and to the last.
fn recovery_with_backlog(rt: &tokio::runtime::Runtime, backlog: u64) -> (Duration, Duration) {
    let broker = Broker::new();
    let input = filled(&broker, "in", backlog);
    let out = broker
        .topic::<u64>("out", TopicConfig::new())
        .expect("sink");
    let began = Instant::now();
    let running = rt
        .block_on(Identity20::builder().input(input).out(out.clone()).start())
        .expect("start");
    wait_for(&out, 1, "backlog");
    let first = began.elapsed();
    wait_for(&out, backlog, "backlog");
    let all = began.elapsed();
    rt.block_on(running.shutdown()).expect("shutdown");
    (first, all)
}

fn main() {
    let rt = runtime();
    let rounds: usize = env_or("BENCH_ROUNDS", if bench_mode() { 5 } else { 1 });
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    if run("P7") {
        p7(&rt, rounds);
    }
    if run("state") {
        let keys: u64 = env_or("BENCH_KEYS", 1_000_000);
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..rounds.min(3) {
            let (elapsed, bytes) = recovery_with_state(&rt, keys);
            times.push(elapsed.as_secs_f64());
            size = bytes;
        }
        println!(
            "recovery with {keys} keys of state ({:.1} MiB checkpoint): start to first new output {}",
            size as f64 / (1 << 20) as f64,
            spread(&times, |t| format!("{:.1} ms", t * 1e3))
        );
    }
    if run("backlog") {
        let backlog: u64 = env_or("BENCH_BACKLOG", 10_000_000);
        let (first, all) = recovery_with_backlog(&rt, backlog);
        println!(
            "start with {backlog} records of backlog: first output after {:.1} ms, all after {:.2} s ({:.2} M records/s)",
            first.as_secs_f64() * 1e3,
            all.as_secs_f64(),
            backlog as f64 / all.as_secs_f64() / 1e6
        );
    }
}
