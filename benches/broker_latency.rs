//! B5: one-way latency at a fixed offered rate, open loop (see `shared/BENCHMARKS.md`).
//!
//! The producer (the main thread) sends record `i` at its intended time `t0 + i / rate`,
//! spinning (or sleeping, when far off) until then and never waiting for the consumer; if
//! it falls behind, it sends the backlog at once. Each value is its intended send time in
//! nanoseconds from a shared `Instant`, and the consumer thread records `now - intended` into
//! an HDR histogram, so a stall anywhere shows up in the latency of every record it delays
//! (no coordinated omission). The first `BENCH_WARMUP_MS` (default 200) of each run are not
//! recorded. Two threads: the pacing producer spins (yielding the core while more than 20 us
//! from its next send), the consumer blocks.
//!
//! Peers, all buffering 65 536 records (so the producer never blocks at these rates):
//! crossbeam-channel bounded with a blocking `recv`; tokio mpsc with `recv().await` on a
//! current-thread runtime in the consumer thread (the producer uses `blocking_send`); the
//! broker (`Overflow::Block`, capacity 65 536) with `recv_blocking`, and with `recv().await`
//! on a current-thread tokio runtime.
//!
//! Peers are interleaved (A B C D, B C D A, ...) for `BENCH_ROUNDS` rounds (default 5) of
//! `BENCH_SECONDS` each (default 2) at each rate of `BENCH_RATES` (default
//! `10000,100000`, records per second). Printed: every run, then per peer the median over
//! rounds of each percentile (max: the largest), the consumer thread's CPU time per record,
//! and the ratios of the broker's percentiles to crossbeam's and tokio's (median, min, max
//! over rounds). `cargo test --benches` runs one short round as a smoke test.

mod common;

use std::thread;
use std::time::Instant;

use broker::{Broker, Overflow, RecvError, Start, TopicConfig};
use common::cpu::thread_cpu_ns;
use common::schedule::{Schedule, now_ns};
use common::settings::{bench_mode, env_or};
use common::stats::{latency_histogram, median, spread, us};
use crossbeam_channel as cb;
use hdrhistogram::Histogram;

/// Buffer of every peer, in records.
const BUFFER: usize = 1 << 16;
/// Peers, in the order of the first round.
const PEERS: &[&str] = &["crossbeam", "tokio-mpsc", "broker-blocking", "broker-async"];
/// Percentiles reported.
const QUANTILES: &[(&str, f64)] = &[
    ("p50", 0.5),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

/// The consumer's side: latencies, records seen, CPU used.
struct Recorder {
    schedule: Schedule,
    hist: Histogram<u64>,
    received: u64,
    lost: u64,
    cpu_start: u64,
}

impl Recorder {
    fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            hist: latency_histogram(),
            received: 0,
            lost: 0,
            cpu_start: thread_cpu_ns(),
        }
    }

    fn record(&mut self, intended: u64) {
        let now = now_ns(self.schedule.base);
        self.received += 1;
        if intended >= self.schedule.record_from {
            self.hist
                .saturating_record(now.saturating_sub(intended).max(1));
        }
    }

    fn finish(self) -> Run {
        Run {
            rx_cpu_ns: thread_cpu_ns().saturating_sub(self.cpu_start),
            hist: self.hist,
            received: self.received,
            lost: self.lost,
            sent: 0,
            seconds: 0.0,
        }
    }
}

/// One run of one peer at one rate.
struct Run {
    hist: Histogram<u64>,
    sent: u64,
    received: u64,
    lost: u64,
    rx_cpu_ns: u64,
    seconds: f64,
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

fn run_peer(peer: &str, schedule: Schedule) -> Run {
    let started = Instant::now();
    let (sent, mut run) = match peer {
        "crossbeam" => {
            let (tx, rx) = cb::bounded::<u64>(BUFFER);
            let consumer = thread::spawn(move || {
                let mut rec = Recorder::new(schedule);
                while let Ok(v) = rx.recv() {
                    rec.record(v);
                }
                rec.finish()
            });
            let sent = schedule.pace(|t| tx.send(t).expect("crossbeam send"));
            drop(tx);
            (sent, consumer.join().expect("consumer"))
        }
        "tokio-mpsc" => {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(BUFFER);
            let consumer = thread::spawn(move || {
                current_thread_runtime().block_on(async move {
                    let mut rec = Recorder::new(schedule);
                    while let Some(v) = rx.recv().await {
                        rec.record(v);
                    }
                    rec.finish()
                })
            });
            let sent = schedule.pace(|t| tx.blocking_send(t).expect("tokio send"));
            drop(tx);
            (sent, consumer.join().expect("consumer"))
        }
        "broker-blocking" | "broker-async" => {
            let broker = Broker::new();
            let topic = broker
                .topic::<u64>(
                    "latency",
                    TopicConfig::new().capacity(BUFFER as u64, Overflow::Block),
                )
                .expect("topic");
            let mut reader = topic.consumer(Start::Earliest).expect("consumer");
            let blocking = peer == "broker-blocking";
            let consumer = thread::spawn(move || {
                let mut rec = Recorder::new(schedule);
                let mut step = |result: Result<u64, RecvError>| match result {
                    Ok(v) => {
                        rec.record(v);
                        true
                    }
                    Err(RecvError::Lagged { skipped, .. }) => {
                        rec.lost += skipped;
                        true
                    }
                    Err(_) => false,
                };
                if blocking {
                    while step(reader.recv_blocking().map(|r| *r.value())) {}
                } else {
                    current_thread_runtime()
                        .block_on(async { while step(reader.recv().await.map(|r| *r.value())) {} });
                }
                rec.finish()
            });
            let producer = topic.producer();
            let sent = schedule.pace(|t| {
                assert!(producer.send_blocking(t).is_ok(), "broker send");
            });
            topic.close();
            (sent, consumer.join().expect("consumer"))
        }
        other => panic!("unknown peer {other}"),
    };
    run.sent = sent;
    run.seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        run.received + run.lost,
        sent,
        "{peer}: records went missing"
    );
    run
}

/// Prints the medians over rounds and the broker's ratios to the reference peers.
fn summarize(rate: u64, runs: &[Vec<Run>]) {
    println!("\n### {rate} records/s offered: median over rounds (max: largest), latency in us\n");
    println!(
        "| peer | rounds | recorded/round | achieved rate | p50 | p99 | p99.9 | p99.99 | max | rx CPU ns/record | lost |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (peer, runs) in PEERS.iter().zip(runs) {
        let mut line = format!("| {peer} | {} |", runs.len());
        let counts: Vec<f64> = runs.iter().map(|r| r.hist.len() as f64).collect();
        let rates: Vec<f64> = runs.iter().map(|r| r.sent as f64 / r.seconds).collect();
        line.push_str(&format!(
            " {:.0} | {:.0}/s |",
            median(&counts),
            median(&rates)
        ));
        for (_, q) in QUANTILES {
            let v: Vec<f64> = runs
                .iter()
                .map(|r| r.hist.value_at_quantile(*q) as f64)
                .collect();
            line.push_str(&format!(" {} |", us(median(&v) as u64)));
        }
        let max = runs.iter().map(|r| r.hist.max()).max().unwrap_or(0);
        let cpu: Vec<f64> = runs
            .iter()
            .map(|r| r.rx_cpu_ns as f64 / r.received.max(1) as f64)
            .collect();
        let lost: u64 = runs.iter().map(|r| r.lost).sum();
        line.push_str(&format!(" {} | {:.0} | {lost} |", us(max), median(&cpu)));
        println!("{line}");
    }

    println!(
        "\nRatios (broker / peer, same round; < 1 means the broker is lower), median [min, max]:\n"
    );
    println!("| broker peer | vs | p50 | p99 | p99.9 | p99.99 |");
    println!("|---|---|---|---|---|---|");
    let index = |name: &str| PEERS.iter().position(|p| *p == name).expect("peer");
    for broker_peer in ["broker-blocking", "broker-async"] {
        for reference in ["crossbeam", "tokio-mpsc"] {
            let (b, r) = (&runs[index(broker_peer)], &runs[index(reference)]);
            let mut line = format!("| {broker_peer} | {reference} |");
            for (_, q) in QUANTILES {
                let ratios: Vec<f64> = b
                    .iter()
                    .zip(r)
                    .map(|(b, r)| {
                        b.hist.value_at_quantile(*q) as f64
                            / r.hist.value_at_quantile(*q).max(1) as f64
                    })
                    .collect();
                line.push_str(&format!(" {} |", spread(&ratios, |v| format!("{v:.2}"))));
            }
            println!("{line}");
        }
    }
}

fn main() {
    // Without `--bench` this is `cargo test --benches`: a short smoke run.
    let bench_mode = bench_mode();
    let seconds: f64 = env_or("BENCH_SECONDS", if bench_mode { 2.0 } else { 0.05 });
    let rounds: usize = env_or("BENCH_ROUNDS", if bench_mode { 5 } else { 1 });
    let warmup_ms: u64 = env_or("BENCH_WARMUP_MS", if bench_mode { 200 } else { 10 });
    let rates: Vec<u64> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "10000,100000".to_owned())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .filter(|&r| r > 0)
        .collect();

    println!(
        "# B5 one-way latency, open loop: {rounds} rounds x {seconds} s per peer per rate, \
         first {warmup_ms} ms of each run not recorded\n"
    );
    println!("| rate | round | peer | sent | recorded | p50 | p99 | p99.9 | p99.99 | max |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let base = Instant::now();
    let mut summaries = Vec::new();
    for &rate in &rates {
        let mut runs: Vec<Vec<Run>> = PEERS.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            for k in 0..PEERS.len() {
                let p = (round + k) % PEERS.len();
                // Start a little ahead, so that the consumer thread is up.
                let schedule = Schedule::new(base, 5_000_000, warmup_ms, seconds, rate);
                let run = run_peer(PEERS[p], schedule);
                let mut line = format!(
                    "| {rate} | {round} | {} | {} | {} |",
                    PEERS[p],
                    run.sent,
                    run.hist.len()
                );
                for (_, q) in QUANTILES {
                    line.push_str(&format!(" {} |", us(run.hist.value_at_quantile(*q))));
                }
                line.push_str(&format!(" {} |", us(run.hist.max())));
                println!("{line}");
                runs[p].push(run);
            }
        }
        summaries.push((rate, runs));
    }
    for (rate, runs) in &summaries {
        summarize(*rate, runs);
    }
}
