//! Pipelines against their peers, in one binary (see `shared/BENCHMARKS.md`): P1, P2, P6.
//!
//! * **P1 identity(20)**: 20 `map` stages over 1 M `u64`, in two flavours. `map(|x| x)` is the
//!   identity as written (the compiler may fold the stages away, and should: that is what
//!   fusion buys); `map(black_box)` is Hydro's benchmark constant (every stage opaque to the
//!   optimiser, so every stage costs something). Peers: a hand-written loop, an iterator
//!   chain of 20 `.map`, `dfir_rs` 0.16 (`dfir_syntax!`: `source_iter -> 20 x map ->
//!   for_each`, `run_available_sync`), `timely` 0.32 (one worker, `timely::example`:
//!   `to_stream -> 20 x map -> inspect`), and ours: the `#[pipeline]` with 20 fused maps,
//!   measured end to end: the source topic is filled before the timer starts; the timer
//!   covers `start()` and stops when the sink topic holds every record (the bench thread
//!   polls `end_offsets` with 50 us sleeps). Ours also with `.without_latency()`. Ours reads
//!   every record from a broker topic (a log) and appends every result to another; the
//!   in-memory peers read a range and sum into a local. Ours' source and sink topics are
//!   unbounded (every record kept; `BENCH_SINK_CAPACITY=n` keeps the sink's last `n` records
//!   instead). Every in-memory peer's sink sums `black_box(x)` and the sum is checked; ours
//!   is checked (outside the timer) by the sink's end offset and metrics count, and by
//!   reading back what the sink keeps (record `i` at offset `i`, in order).
//! * **P2 identity(20) with every edge a hop**, 1 M `u64`: ours is 20 x
//!   `key_by(|x| *x).map(|(_, v)| v)` (20 internal broker topics of one partition, so 21
//!   tasks on the 2 tokio workers), timed from the append of the source records (the
//!   pipeline is started first, untimed: see [`Fill::AfterStart`]); thread-per-stage
//!   crossbeam channels (a source thread, 20 forwarding threads, the bench thread as sink,
//!   bounded channels of 16 384 = ours' internal topic capacity; 22 threads on 2 cores:
//!   over-subscribed, as that design is); timely with 2 workers and an `exchange` before every
//!   `map` (routed by `x + hop`, so every record changes worker at every hop).
//! * **P6 metrics cost**: P1's `map(|x| x)` pipeline with metrics on (the default: counts and
//!   one record in 1024 timed through every stage), with `.sample_every(64)`, and with
//!   `.without_latency()` (counts only, the reference).
//!
//! Rounds are interleaved (A B C, B C A, ...): one warm-up round, not reported, then
//! `BENCH_ROUNDS` (default 5). In a round each peer runs at least `BENCH_REPS` times (default
//! 3; P6: 5) and for at least `BENCH_MIN_MS` (default 300; P6: twice that) milliseconds of
//! measured time (P2: one run), the runs themselves interleaved (A B C A B C ... while a peer
//! still needs runs), and its round time is the mean per run. Printed per workload: the median
//! round time, records/s, the CPU the process used over wall time ("cores", from
//! `/proc/self/stat`, 10 ms resolution), and the time ratio to each reference peer per round
//! (median [min, max] over rounds; below 1 is faster than the reference).
//!
//! Run: `cargo bench -p dataflow-benches --bench pipelines` (about a minute on 2 cores). `BENCH_ONLY=P1,P6` runs
//! some workloads; `BENCH_P1_RECORDS`, `BENCH_P2_RECORDS` change the record counts;
//! `BENCH_P2_FILL=before` fills P2's source before `start()` like P1 (this loses records
//! today, and the run stops with a report). `cargo test --benches` runs it in a short smoke
//! mode (small counts, one round). Nothing here is random: the values are sequence numbers.

mod common;

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::cpu::process_cpu;
use common::settings::{bench_mode, env_or};
use common::stats::{median, spread};
use crossbeam_channel as cb;
use dataflow::broker::{Broker, Overflow, Start, Topic, TopicConfig};
use dataflow::{PipelineOptions, Running, Sink, Source, StartError, pipeline};
use timely::dataflow::operators::vec::{Map, ToStream};
use timely::dataflow::operators::{Exchange, Inspect};

/// Stages of every identity pipeline.
const STAGES: usize = 20;
/// Capacity of the crossbeam channels in P2: the default capacity of ours' internal topics.
const CHANNEL_CAPACITY: usize = 1 << 14;

// ---------------------------------------------------------------------------------------
// Ours

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
fn opaque20(input: Source<u64>, out: Sink<u64>) {
    input
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .map(|x: u64| black_box(x))
        .to(out);
}

/// Every edge is a repartition: 20 hops through internal broker topics.
#[pipeline]
fn hops20(input: Source<u64>, out: Sink<u64>) {
    input
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .to(out);
}

type Started = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Running, StartError>>>>;
type StartFn = fn(Topic<u64>, Topic<u64>, PipelineOptions) -> Started;
/// Makes the options of one run of ours.
type OptionsFn = fn() -> PipelineOptions;

fn start_identity(i: Topic<u64>, o: Topic<u64>, opts: PipelineOptions) -> Started {
    Box::pin(Identity20::builder().input(i).out(o).options(opts).start())
}

fn start_opaque(i: Topic<u64>, o: Topic<u64>, opts: PipelineOptions) -> Started {
    Box::pin(Opaque20::builder().input(i).out(o).options(opts).start())
}

fn start_hops(i: Topic<u64>, o: Topic<u64>, opts: PipelineOptions) -> Started {
    Box::pin(Hops20::builder().input(i).out(o).options(opts).start())
}

/// When the source topic is filled.
#[derive(Clone, Copy)]
enum Fill {
    /// Before `start()`, untimed; the timer covers `start()`.
    BeforeStart,
    /// After `start()` (untimed), by the bench thread with one `send_batch_blocking`, timed.
    /// Needed for pipelines with internal topics: segments start in order, each spawning its
    /// tasks before the next segment's consumer group exists, and a bounded internal topic
    /// with no group yet drops its oldest records (see `docs/benchmarks.md`).
    AfterStart,
}

/// One end-to-end run of one of our pipelines over `n` records: fill the source, start, wait
/// for the sink to hold `n` records, then shut down and check (untimed).
fn ours(
    rt: &tokio::runtime::Runtime,
    n: u64,
    start: StartFn,
    options: PipelineOptions,
    fill: Fill,
) -> Duration {
    let broker = Broker::new();
    let input = broker
        .topic::<u64>("input", TopicConfig::new().partitions(1))
        .expect("source topic");
    let out = broker
        .topic::<u64>("out", sink_config())
        .expect("sink topic");
    let fill_source = || {
        input
            .producer()
            .send_batch_blocking(0, (0..n as usize).map(|i| i as u64))
            .expect("fill the source");
    };

    let guard = rt.enter();
    let (began, running) = match fill {
        Fill::BeforeStart => {
            fill_source();
            let began = Instant::now();
            (
                began,
                rt.block_on(start(input.clone(), out.clone(), options))
                    .expect("start"),
            )
        }
        Fill::AfterStart => {
            let running = rt
                .block_on(start(input.clone(), out.clone(), options))
                .expect("start");
            let began = Instant::now();
            fill_source();
            (began, running)
        }
    };
    let deadline = began + Duration::from_secs(30);
    while out.end_offsets().iter().sum::<u64>() < n {
        assert!(
            Instant::now() < deadline,
            "the sink never got every record (lost or stalled): {}{}",
            running.metrics(),
            internal_ends(&running)
        );
        thread::sleep(Duration::from_micros(50));
    }
    let elapsed = began.elapsed();
    drop(guard);

    let metrics = rt.block_on(running.shutdown()).expect("clean shutdown");
    assert_eq!(metrics.stage("out").map(|s| s.count), Some(n), "{metrics}");
    assert_eq!(out.end_offsets(), [n], "the sink got every record once");
    // What the sink keeps: record `i` at offset `i`, in order, up to the last.
    let mut reader = out.consumer(Start::Earliest).expect("reader");
    let mut next = out.start_offsets()[0];
    while let Ok(record) = reader.try_recv() {
        assert_eq!(
            (*record, record.offset()),
            (next, next),
            "sink out of order or wrong"
        );
        next += 1;
    }
    assert_eq!(next, n, "the sink keeps the last records");
    elapsed
}

/// The sink topic: one partition, unbounded (every record kept), or, with
/// `BENCH_SINK_CAPACITY=n`, the last `n` records kept (`Overflow::DropOldest`).
fn sink_config() -> TopicConfig {
    match env_or("BENCH_SINK_CAPACITY", 0u64) {
        0 => TopicConfig::new(),
        capacity => TopicConfig::new().capacity(capacity, Overflow::DropOldest),
    }
}

/// The end offsets of a pipeline's internal topics, for a stall report.
fn internal_ends(running: &Running) -> String {
    let broker = running.broker();
    let mut names = broker.topic_names();
    names.sort_by_key(|n| n.rsplit('_').next().and_then(|i| i.parse::<u32>().ok()));
    names
        .iter()
        .filter_map(|name| {
            let topic = broker.open_topic::<(u64, u64)>(name).ok()?;
            Some(format!(
                "{name}: start {:?}, end {:?}\n",
                topic.start_offsets(),
                topic.end_offsets()
            ))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// In-memory peers (P1)

fn expected_sum(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

fn hand_loop(n: u64, stage: impl Fn(u64) -> u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..n {
        let mut x = i;
        for _ in 0..STAGES {
            x = stage(x);
        }
        sum += black_box(x);
    }
    sum
}

fn iter_chain(n: u64, f: impl Fn(u64) -> u64 + Copy) -> u64 {
    (0..n)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .map(f)
        .fold(0, |sum, x| sum + black_box(x))
}

fn dfir_identity(n: u64) -> u64 {
    let sum = Rc::new(Cell::new(0u64));
    let out = Rc::clone(&sum);
    let mut df = dfir_rs::dfir_syntax! {
        source_iter(0..n)
            -> map(|x| x) -> map(|x| x) -> map(|x| x) -> map(|x| x) -> map(|x| x)
            -> map(|x| x) -> map(|x| x) -> map(|x| x) -> map(|x| x) -> map(|x| x)
            -> map(|x| x) -> map(|x| x) -> map(|x| x) -> map(|x| x) -> map(|x| x)
            -> map(|x| x) -> map(|x| x) -> map(|x| x) -> map(|x| x) -> map(|x| x)
            -> for_each(|x: u64| out.set(out.get() + black_box(x)));
    };
    df.run_available_sync();
    drop(df);
    sum.get()
}

fn dfir_opaque(n: u64) -> u64 {
    let sum = Rc::new(Cell::new(0u64));
    let out = Rc::clone(&sum);
    let mut df = dfir_rs::dfir_syntax! {
        source_iter(0..n)
            -> map(black_box) -> map(black_box) -> map(black_box) -> map(black_box)
            -> map(black_box) -> map(black_box) -> map(black_box) -> map(black_box)
            -> map(black_box) -> map(black_box) -> map(black_box) -> map(black_box)
            -> map(black_box) -> map(black_box) -> map(black_box) -> map(black_box)
            -> map(black_box) -> map(black_box) -> map(black_box) -> map(black_box)
            -> for_each(|x: u64| out.set(out.get() + black_box(x)));
    };
    df.run_available_sync();
    drop(df);
    sum.get()
}

fn timely_chain(n: u64, stage: impl Fn(u64) -> u64 + Copy + Send + Sync + 'static) -> u64 {
    let sum = Arc::new(AtomicU64::new(0));
    let out = Arc::clone(&sum);
    timely::example(move |scope| {
        let mut stream = (0..n).to_stream(scope);
        for _ in 0..STAGES {
            stream = stream.map(stage);
        }
        stream.inspect_core(move |event| {
            if let Ok((_, batch)) = event {
                let part = batch.iter().fold(0u64, |s, x| s + black_box(*x));
                out.fetch_add(part, Ordering::Relaxed);
            }
        });
    });
    sum.load(Ordering::Relaxed)
}

fn identity(x: u64) -> u64 {
    x
}

fn opaque(x: u64) -> u64 {
    black_box(x)
}

/// Times `run`, which returns the sum of what reached its sink, and checks the sum.
fn timed_sum(n: u64, run: impl FnOnce() -> u64) -> Duration {
    let began = Instant::now();
    let sum = run();
    let elapsed = began.elapsed();
    assert_eq!(sum, expected_sum(n), "every record reaches the sink once");
    elapsed
}

// ---------------------------------------------------------------------------------------
// P2 peers

/// A source thread, `STAGES` forwarding threads and the calling thread as the sink, joined by
/// bounded crossbeam channels.
fn thread_per_stage(n: u64) -> u64 {
    let (source_tx, mut rx) = cb::bounded::<u64>(CHANNEL_CAPACITY);
    let mut threads = Vec::with_capacity(STAGES + 1);
    threads.push(thread::spawn(move || {
        for i in 0..n {
            source_tx.send(i).expect("stage alive");
        }
    }));
    for _ in 0..STAGES {
        let (tx, next_rx) = cb::bounded::<u64>(CHANNEL_CAPACITY);
        let stage_rx = std::mem::replace(&mut rx, next_rx);
        threads.push(thread::spawn(move || {
            for x in stage_rx {
                tx.send(identity(x)).expect("next stage alive");
            }
        }));
    }
    let sum = rx.iter().fold(0u64, |s, x| s + black_box(x));
    for t in threads {
        t.join().expect("stage thread");
    }
    sum
}

/// Two timely workers; an `exchange` before each of the 20 maps moves every record to the
/// other worker.
fn timely_exchange(n: u64) -> u64 {
    let guards = timely::execute(timely::Config::process(2), move |worker| {
        let index = worker.index();
        let sum = Rc::new(Cell::new(0u64));
        let out = Rc::clone(&sum);
        worker.dataflow::<u64, _, _>(move |scope| {
            let records = if index == 0 { 0..n } else { 0..0 };
            let mut stream = records.to_stream(scope);
            for hop in 0..STAGES as u64 {
                stream = stream.exchange(move |x: &u64| *x + hop).map(identity);
            }
            stream.inspect_core(move |event| {
                if let Ok((_, batch)) = event {
                    let part = batch.iter().fold(0u64, |s, x| s + black_box(*x));
                    out.set(out.get() + part);
                }
            });
        });
        while worker.has_dataflows() {
            worker.step_or_park(None);
        }
        sum.get()
    })
    .expect("timely workers");
    guards
        .join()
        .into_iter()
        .map(|r| r.expect("timely worker"))
        .sum()
}

// ---------------------------------------------------------------------------------------
// Harness

type Run<'a> = Box<dyn FnMut() -> Duration + 'a>;

struct Peer<'a> {
    name: &'static str,
    run: Run<'a>,
    /// Per round: mean measured time per run, and process CPU over wall time.
    rounds: Vec<(Duration, f64)>,
}

struct Workload<'a> {
    id: &'static str,
    title: String,
    records: u64,
    /// Reference peers (names), each gets a ratio column.
    references: Vec<&'static str>,
    min_reps: u32,
    min_time: Duration,
    peers: Vec<Peer<'a>>,
    notes: Vec<String>,
}

impl<'a> Workload<'a> {
    fn peer(mut self, name: &'static str, run: impl FnMut() -> Duration + 'a) -> Self {
        self.peers.push(Peer {
            name,
            run: Box::new(run),
            rounds: Vec::new(),
        });
        self
    }

    /// One round. Runs are interleaved too: each pass runs every peer that still needs runs
    /// once, starting at peer `round % peers` (A B C A B C ...), until every peer has run at
    /// least `min_reps` times and for at least `min_time`.
    fn round(&mut self, round: usize, record: bool) {
        let count = self.peers.len();
        let mut measured = vec![Duration::ZERO; count];
        let mut wall = vec![Duration::ZERO; count];
        let mut cpu = vec![Duration::ZERO; count];
        let mut reps = vec![0u32; count];
        let done =
            |measured: Duration, reps: u32| reps >= self.min_reps && measured >= self.min_time;
        while (0..count).any(|i| !done(measured[i], reps[i])) {
            for k in 0..count {
                let i = (round + k) % count;
                if done(measured[i], reps[i]) {
                    continue;
                }
                let cpu0 = process_cpu();
                let began = Instant::now();
                measured[i] += (self.peers[i].run)();
                wall[i] += began.elapsed();
                cpu[i] += process_cpu().saturating_sub(cpu0);
                reps[i] += 1;
            }
        }
        if record {
            for (i, peer) in self.peers.iter_mut().enumerate() {
                let cores = cpu[i].as_secs_f64() / wall[i].as_secs_f64();
                peer.rounds.push((measured[i] / reps[i], cores));
            }
        }
    }

    fn report(&self) {
        println!("\n## {} {}\n", self.id, self.title);
        for note in &self.notes {
            println!("{note}");
        }
        if !self.notes.is_empty() {
            println!();
        }
        let mut header = "| peer | median time | records/s | cores |".to_owned();
        let mut rule = "|---|---:|---:|---:|".to_owned();
        for reference in &self.references {
            header.push_str(&format!(" time / {reference} |"));
            rule.push_str("---:|");
        }
        println!("{header}\n{rule}");
        for peer in &self.peers {
            let times: Vec<f64> = peer.rounds.iter().map(|r| r.0.as_secs_f64()).collect();
            let cores: Vec<f64> = peer.rounds.iter().map(|r| r.1).collect();
            let time = median(&times);
            let mut line = format!(
                "| {} | {} | {} | {:.2} |",
                peer.name,
                human_time(time),
                human_rate(self.records as f64 / time),
                median(&cores)
            );
            for reference in &self.references {
                let Some(base) = self.peers.iter().find(|p| p.name == *reference) else {
                    line.push_str(" - |");
                    continue;
                };
                let ratios: Vec<f64> = peer
                    .rounds
                    .iter()
                    .zip(&base.rounds)
                    .map(|(a, b)| a.0.as_secs_f64() / b.0.as_secs_f64())
                    .collect();
                line.push_str(&format!(" {} |", spread(&ratios, |v| format!("{v:.3}"))));
            }
            println!("{line}");
        }
    }
}

fn human_time(seconds: f64) -> String {
    match seconds {
        s if s < 1e-3 => format!("{:.1} us", s * 1e6),
        s if s < 1.0 => format!("{:.2} ms", s * 1e3),
        s => format!("{s:.3} s"),
    }
}

fn human_rate(per_second: f64) -> String {
    match per_second {
        r if r >= 1e9 => format!("{:.2} G", r / 1e9),
        r if r >= 1e6 => format!("{:.1} M", r / 1e6),
        r if r >= 1e3 => format!("{:.1} k", r / 1e3),
        r => format!("{r:.0}"),
    }
}

/// P1 with one flavour of stage. Generic over the stage, so that every peer gets the stage
/// inlined (a `fn` pointer would cost every peer an indirect call per stage).
fn p1<'a, S>(
    (rt, n, reps, min_time): (&'a tokio::runtime::Runtime, u64, u32, Duration),
    flavour: &str,
    stage: S,
    ours_start: StartFn,
    dfir: fn(u64) -> u64,
) -> Workload<'a>
where
    S: Fn(u64) -> u64 + Copy + Send + Sync + 'static,
{
    Workload {
        id: "P1",
        title: format!("identity(20), {flavour}, {n} u64 records"),
        records: n,
        references: vec!["dfir_rs", "timely"],
        min_reps: reps,
        min_time,
        peers: Vec::new(),
        notes: vec![
            "Ours reads every record from a broker topic (a log) and appends every result to \
             another topic, end to end from `start()`; the in-memory peers read a range and sum \
             into a local."
                .to_owned(),
        ],
    }
    .peer("hand-written loop", move || {
        timed_sum(n, || hand_loop(n, stage))
    })
    .peer("iterator chain", move || {
        timed_sum(n, || iter_chain(n, stage))
    })
    .peer("dfir_rs", move || timed_sum(n, || dfir(n)))
    .peer("timely", move || timed_sum(n, || timely_chain(n, stage)))
    .peer("ours", move || {
        ours(rt, n, ours_start, PipelineOptions::new(), Fill::BeforeStart)
    })
    .peer("ours without_latency", move || {
        ours(
            rt,
            n,
            ours_start,
            PipelineOptions::new().without_latency(),
            Fill::BeforeStart,
        )
    })
}

fn main() {
    // Without `--bench` this is `cargo test --benches`: a short smoke run.
    let bench_mode = bench_mode();
    let rounds: usize = env_or("BENCH_ROUNDS", if bench_mode { 5 } else { 1 });
    let warmup: usize = env_or("BENCH_WARMUP_ROUNDS", usize::from(bench_mode));
    let reps: u32 = env_or("BENCH_REPS", if bench_mode { 3 } else { 1 });
    let min_time = Duration::from_millis(env_or("BENCH_MIN_MS", if bench_mode { 300 } else { 0 }));
    let p1_n: u64 = env_or(
        "BENCH_P1_RECORDS",
        if bench_mode { 1_000_000 } else { 10_000 },
    );
    let p2_n: u64 = env_or(
        "BENCH_P2_RECORDS",
        if bench_mode { 1_000_000 } else { 2_000 },
    );
    // `BENCH_P2_FILL=before` fills P2's source before `start()`, as P1 does: that loses
    // records (see `Fill::AfterStart`), and the run panics with a stall report.
    let p2_fill = match std::env::var("BENCH_P2_FILL").as_deref() {
        Ok("before") => Fill::BeforeStart,
        _ => Fill::AfterStart,
    };
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_uppercase()).collect());
    let wanted = |id: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == id));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rt = &rt;

    let mut workloads: Vec<Workload<'_>> = Vec::new();
    if wanted("P1") {
        let settings = (rt, p1_n, reps, min_time);
        workloads.push(p1(
            settings,
            "map(|x| x)",
            identity,
            start_identity,
            dfir_identity,
        ));
        workloads.push(p1(
            settings,
            "map(black_box)",
            opaque,
            start_opaque,
            dfir_opaque,
        ));
    }
    if wanted("P2") {
        let n = p2_n;
        workloads.push(
            Workload {
                id: "P2",
                title: format!("identity(20), every edge a hop, {n} u64 records"),
                records: n,
                references: vec!["thread-per-stage crossbeam"],
                min_reps: 1,
                min_time: Duration::ZERO,
                peers: Vec::new(),
                notes: vec![
                    "thread-per-stage: 22 threads on 2 cores (over-subscribed); timely: 2 workers, \
                     every record changes worker at every hop; ours: 20 internal topics, 21 tasks \
                     on 2 tokio workers, metrics on (default)."
                        .to_owned(),
                ],
            }
            .peer("thread-per-stage crossbeam", move || {
                timed_sum(n, || thread_per_stage(n))
            })
            .peer("timely (2 workers, exchange)", move || {
                timed_sum(n, || timely_exchange(n))
            })
            .peer("ours (20 key_by hops)", move || {
                ours(rt, n, start_hops, PipelineOptions::new(), p2_fill)
            }),
        );
    }
    if wanted("P6") {
        let n = p1_n;
        let mut p6 = Workload {
            id: "P6",
            title: format!("metrics cost: P1 map(|x| x) pipeline, {n} u64 records"),
            records: n,
            references: vec!["metrics off (without_latency)"],
            min_reps: reps.max(5),
            min_time: min_time * 2,
            peers: Vec::new(),
            notes: vec![
                "on: counts per stage plus one record in 1024 timed through every stage and \
                 end to end (the default); sample_every(64): the same, one record in 64; off: \
                 `.without_latency()`, counts only."
                    .to_owned(),
            ],
        };
        let settings: [(&str, OptionsFn); 3] = [
            ("metrics on (default)", PipelineOptions::new),
            ("metrics on, sample_every(64)", || {
                PipelineOptions::new().sample_every(64)
            }),
            ("metrics off (without_latency)", || {
                PipelineOptions::new().without_latency()
            }),
        ];
        for (name, options) in settings {
            p6 = p6.peer(name, move || {
                ours(rt, n, start_identity, options(), Fill::BeforeStart)
            });
        }
        workloads.push(p6);
    }

    println!(
        "# Pipelines: {} warm-up round(s), then {rounds} interleaved rounds; per round each peer \
         runs >= {reps} times and >= {} ms (P2: once; P6: >= {} times and twice as long)",
        warmup,
        min_time.as_millis(),
        reps.max(5)
    );
    let began = Instant::now();
    for round in 0..warmup + rounds {
        for workload in &mut workloads {
            workload.round(round, round >= warmup);
        }
        eprintln!(
            "round {}/{} done after {:.1} s",
            round + 1,
            warmup + rounds,
            began.elapsed().as_secs_f64()
        );
    }
    for workload in &workloads {
        workload.report();
    }
    println!("\ntotal {:.1} s", began.elapsed().as_secs_f64());
}
