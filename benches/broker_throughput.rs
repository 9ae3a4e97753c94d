//! Broker throughput against its peers, in one binary (see `shared/BENCHMARKS.md`).
//!
//! * **B1** SPSC: one producer thread (the bench thread), one consumer thread, `u64` (8 B)
//!   and 64-byte values, bursts of 1, 10 and 100; 100 000 messages end to end per iteration.
//!   Peers: crossbeam-channel, flume and kanal bounded (1024), the disruptor (ring of 1024,
//!   `Sleep` wait strategy as `disruptor-sleep`, and `BusySpin` as `disruptor-busyspin`),
//!   and the broker (`Overflow::Block`, capacity 65 536: lossless, and the last 65 536
//!   records stay replayable). A burst is one `send_batch_blocking` for the broker, one
//!   `batch_publish` for the disruptor and `burst` single sends for the channels (they have
//!   no batch send, so for them the burst size changes nothing).
//! * **B3** fan-out: one producer, K = 1, 4, 8 readers that each see every record (so K
//!   reader threads plus the producer on a 2-core machine: oversubscribed on purpose).
//!   Peers: tokio broadcast (capacity 131 072 >= the records of one iteration, and `Lagged`
//!   counted), K crossbeam channels (65 536 each, the producer sends to each), the broker
//!   (K consumers of one topic, `Overflow::Block`, 65 536).
//! * **B6** replay: 10 M `u64` records appended once to an unbounded topic, then a reader
//!   from offset 0 reads them all with `try_recv`; a `Vec<u64>` scan is the floor.
//!
//! `disruptor-busyspin` runs in the interleaved rounds only (below), unless
//! `BENCH_BUSYSPIN=1`: two spinning threads on a 2-core machine shared with anything else
//! collapse to time-slicing (an iteration can take a second), which would blow up
//! criterion's sample plan. `BENCH_DROPOLDEST=1` adds the broker with `Overflow::DropOldest`
//! (65 536) to B1 and B3; its readers count the records they lose to `Lagged`, and only
//! delivered records count. Every consumer checks that it sees the sequence numbers in order
//! and without gaps. Nothing here is random; the values are the sequence numbers.
//!
//! After criterion, the same cases run again interleaved (A B C, B C A, ... for
//! `BENCH_ROUNDS` rounds, default 5, each at least `BENCH_REPS` iterations, default 3, and
//! `BENCH_MIN_MS` milliseconds, default 150, stopping after `BENCH_MAX_MS`, default 1000),
//! and a table of ratios to the reference peers (median, min, max over rounds) and CPU time
//! per message (all threads of the process, from `/proc/self/task/*/schedstat`) is printed.
//! `BENCH_ROUNDS=0` skips it; it never runs in test mode (`cargo test --benches`).

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use broker::{Broker, Consumer, Overflow, Producer, RecvError, Start, Topic, TopicConfig};
use common::cpu::live_threads_cpu_ns;
use common::settings::{bench_mode, env_flag, env_or};
use common::stats::{median, min_max};
use criterion::{Criterion, Throughput};
use crossbeam_channel as cb;
use disruptor::wait_strategies::WaitStrategy;
use disruptor::{BusySpin, Producer as _, Sleep};

/// Messages moved end to end per iteration (B1, B3).
const N: u64 = 100_000;
/// Capacity of the bounded channels and of the disruptor ring in B1.
const CAP: usize = 1024;
/// Capacity of the broker's topics (records kept for replay), and of B3's crossbeam channels.
const BROKER_CAP: u64 = 1 << 16;
/// Records in the B6 replay log.
const REPLAY_RECORDS: u64 = 10_000_000;
/// How long a disruptor reader sleeps when it finds nothing (its `Sleep` strategy; Linux
/// rounds it up to its timer slack, about 50 us).
const DISRUPTOR_SLEEP: Duration = Duration::from_micros(10);

/// A message: built from its sequence number, which the reader checks.
trait Msg: Copy + Default + Send + Sync + 'static {
    fn make(seq: u64) -> Self;
    fn seq(&self) -> u64;
}

impl Msg for u64 {
    fn make(seq: u64) -> Self {
        seq
    }

    fn seq(&self) -> u64 {
        *self
    }
}

/// A 64-byte value; the sequence number is in its first 8 bytes.
#[derive(Clone, Copy)]
struct Bytes64([u8; 64]);

impl Default for Bytes64 {
    fn default() -> Self {
        Self([0; 64])
    }
}

impl Msg for Bytes64 {
    fn make(seq: u64) -> Self {
        let mut bytes = [0x5a; 64];
        bytes[..8].copy_from_slice(&seq.to_le_bytes());
        Self(bytes)
    }

    fn seq(&self) -> u64 {
        let mut head = [0; 8];
        head.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(head)
    }
}

/// The sending side of a peer.
trait Tx<V> {
    /// Sends messages `first .. first + len` as one burst.
    fn burst(&mut self, first: u64, len: usize);
}

impl<V: Msg> Tx<V> for cb::Sender<V> {
    fn burst(&mut self, first: u64, len: usize) {
        for k in 0..len as u64 {
            self.send(V::make(first + k)).expect("crossbeam send");
        }
    }
}

impl<V: Msg> Tx<V> for flume::Sender<V> {
    fn burst(&mut self, first: u64, len: usize) {
        for k in 0..len as u64 {
            self.send(V::make(first + k)).expect("flume send");
        }
    }
}

impl<V: Msg> Tx<V> for kanal::Sender<V> {
    fn burst(&mut self, first: u64, len: usize) {
        for k in 0..len as u64 {
            self.send(V::make(first + k)).expect("kanal send");
        }
    }
}

impl<V: Msg> Tx<V> for Producer<V> {
    fn burst(&mut self, first: u64, len: usize) {
        let ok = if len == 1 {
            self.send_blocking(V::make(first)).is_ok()
        } else {
            let values = (0..len).map(|k| V::make(first + k as u64));
            self.send_batch_blocking(0, values).is_ok()
        };
        assert!(ok, "broker send failed");
    }
}

impl<V: Msg> Tx<V> for disruptor::SingleProducer<V, disruptor::SingleConsumerBarrier> {
    fn burst(&mut self, first: u64, len: usize) {
        if len == 1 {
            self.publish(|slot| *slot = V::make(first));
        } else {
            self.batch_publish(len, |slots| {
                for (k, slot) in slots.enumerate() {
                    *slot = V::make(first + k as u64);
                }
            });
        }
    }
}

/// K crossbeam channels: every message goes to each.
impl<V: Msg> Tx<V> for Vec<cb::Sender<V>> {
    fn burst(&mut self, first: u64, len: usize) {
        for k in 0..len as u64 {
            let value = V::make(first + k);
            for tx in self.iter() {
                tx.send(value).expect("crossbeam send");
            }
        }
    }
}

impl<V: Msg> Tx<V> for tokio::sync::broadcast::Sender<V> {
    fn burst(&mut self, first: u64, len: usize) {
        for k in 0..len as u64 {
            assert!(self.send(V::make(first + k)).is_ok(), "broadcast send");
        }
    }
}

/// One peer, set up once and driven an iteration at a time.
trait Harness {
    /// Sends `n` messages in bursts of `burst`, and returns once every reader has them all.
    fn run(&mut self, n: u64, burst: usize);
    /// Records the readers lost to `Lagged` so far.
    fn lost(&self) -> u64;
}

/// A producer, its readers and the channel on which each reader reports every `N` messages.
struct Pipe<V, T: Tx<V>> {
    tx: Option<T>,
    /// Readers that have a whole iteration.
    done: cb::Receiver<()>,
    readers: usize,
    seq: u64,
    threads: Vec<JoinHandle<()>>,
    lost: Arc<AtomicU64>,
    /// Run after the sender is dropped, so that the readers end (closes a broker topic).
    close: Option<Box<dyn FnOnce()>>,
    _value: std::marker::PhantomData<V>,
}

impl<V: Msg, T: Tx<V>> Harness for Pipe<V, T> {
    fn run(&mut self, n: u64, burst: usize) {
        let tx = self.tx.as_mut().expect("open");
        let end = self.seq + n;
        while self.seq < end {
            let len = (burst as u64).min(end - self.seq);
            tx.burst(self.seq, len as usize);
            self.seq += len;
        }
        for _ in 0..self.readers {
            self.done.recv().expect("a reader died");
        }
    }

    fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

impl<V, T: Tx<V>> Drop for Pipe<V, T> {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(close) = self.close.take() {
            close();
        }
        for t in self.threads.drain(..) {
            t.join().expect("reader panicked");
        }
    }
}

/// Counts what a reader sees, checks order, and reports each completed iteration.
struct Tally {
    expected: u64,
    next_done: u64,
    n: u64,
    done: cb::Sender<()>,
}

impl Tally {
    fn new(n: u64, done: cb::Sender<()>) -> Self {
        Self {
            expected: 0,
            next_done: n,
            n,
            done,
        }
    }

    fn got(&mut self, seq: u64) {
        assert_eq!(seq, self.expected, "out of order or lost");
        self.advance(1);
    }

    fn advance(&mut self, by: u64) {
        self.expected += by;
        while self.expected >= self.next_done {
            // The producer may be gone at the end; nothing to report to then.
            let _ = self.done.send(());
            self.next_done += self.n;
        }
    }
}

/// A harness whose readers cannot lose records (channels that block the sender).
fn pipe<V: Msg, T: Tx<V> + 'static>(
    tx: T,
    done: cb::Receiver<()>,
    readers: usize,
    threads: Vec<JoinHandle<()>>,
) -> Box<dyn Harness> {
    pipe_counting_losses(tx, done, readers, threads, Arc::default(), None)
}

/// A harness whose readers add the records they lose to `Lagged` to `lost`; `close` runs
/// after the sender is dropped.
fn pipe_counting_losses<V: Msg, T: Tx<V> + 'static>(
    tx: T,
    done: cb::Receiver<()>,
    readers: usize,
    threads: Vec<JoinHandle<()>>,
    lost: Arc<AtomicU64>,
    close: Option<Box<dyn FnOnce()>>,
) -> Box<dyn Harness> {
    Box::new(Pipe {
        tx: Some(tx),
        done,
        readers,
        seq: 0,
        threads,
        lost,
        close,
        _value: std::marker::PhantomData,
    })
}

/// Spawns a reader thread that calls `recv` until it returns `None`.
fn channel_reader<V: Msg>(
    n: u64,
    done: &cb::Sender<()>,
    mut recv: impl FnMut() -> Option<V> + Send + 'static,
) -> JoinHandle<()> {
    let mut tally = Tally::new(n, done.clone());
    thread::spawn(move || {
        while let Some(v) = recv() {
            tally.got(v.seq());
        }
    })
}

fn crossbeam<V: Msg>(n: u64) -> Box<dyn Harness> {
    let (tx, rx) = cb::bounded::<V>(CAP);
    let (done_tx, done) = cb::unbounded();
    let reader = channel_reader(n, &done_tx, move || rx.recv().ok());
    pipe(tx, done, 1, vec![reader])
}

fn flume<V: Msg>(n: u64) -> Box<dyn Harness> {
    let (tx, rx) = flume::bounded::<V>(CAP);
    let (done_tx, done) = cb::unbounded();
    let reader = channel_reader(n, &done_tx, move || rx.recv().ok());
    pipe(tx, done, 1, vec![reader])
}

fn kanal<V: Msg>(n: u64) -> Box<dyn Harness> {
    let (tx, rx) = kanal::bounded::<V>(CAP);
    let (done_tx, done) = cb::unbounded();
    let reader = channel_reader(n, &done_tx, move || rx.recv().ok());
    pipe(tx, done, 1, vec![reader])
}

fn disruptor<V: Msg, W: WaitStrategy + 'static>(n: u64, wait: W) -> Box<dyn Harness> {
    let (done_tx, done) = cb::unbounded();
    let mut tally = Tally::new(n, done_tx);
    // The disruptor owns its reader thread; dropping the producer stops and joins it.
    let producer = disruptor::build_single_producer(CAP, V::default, wait)
        .handle_events_with(move |v: &V, _seq, _end_of_batch| tally.got(v.seq()))
        .build();
    pipe(producer, done, 1, Vec::new())
}

/// Spawns a broker reader thread; it ends when the topic closes.
fn broker_reader<V: Msg>(
    mut consumer: Consumer<V>,
    n: u64,
    done: &cb::Sender<()>,
    lost: &Arc<AtomicU64>,
) -> JoinHandle<()> {
    let mut tally = Tally::new(n, done.clone());
    let lost = Arc::clone(lost);
    thread::spawn(move || {
        loop {
            match consumer.recv_blocking() {
                Ok(record) => tally.got(record.value().seq()),
                Err(RecvError::Lagged { skipped, .. }) => {
                    lost.fetch_add(skipped, Ordering::Relaxed);
                    tally.advance(skipped);
                }
                Err(_) => break,
            }
        }
    })
}

/// The broker with `readers` consumers of one single-partition topic.
fn broker<V: Msg>(n: u64, readers: usize, overflow: Overflow) -> Box<dyn Harness> {
    let broker = Broker::new();
    let topic: Topic<V> = broker
        .topic("bench", TopicConfig::new().capacity(BROKER_CAP, overflow))
        .expect("topic");
    let (done_tx, done) = cb::unbounded();
    let lost = Arc::new(AtomicU64::new(0));
    let threads = (0..readers)
        .map(|_| {
            let consumer = topic.consumer(Start::Earliest).expect("consumer");
            broker_reader(consumer, n, &done_tx, &lost)
        })
        .collect();
    let producer = topic.producer();
    let close = Box::new(move || {
        topic.close();
        drop(broker);
    });
    pipe_counting_losses(producer, done, readers, threads, lost, Some(close))
}

fn crossbeam_fanout(n: u64, readers: usize) -> Box<dyn Harness> {
    let (done_tx, done) = cb::unbounded();
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..readers {
        let (tx, rx) = cb::bounded::<u64>(BROKER_CAP as usize);
        senders.push(tx);
        threads.push(channel_reader(n, &done_tx, move || rx.recv().ok()));
    }
    pipe(senders, done, readers, threads)
}

fn tokio_broadcast(n: u64, readers: usize) -> Box<dyn Harness> {
    use tokio::sync::broadcast::error::RecvError as BRecvError;
    // At least one iteration's records: the producer waits for every reader after each
    // iteration, so no reader can lag (and `Lagged` is counted should one ever do).
    let capacity = (n as usize).next_power_of_two();
    let (tx, _) = tokio::sync::broadcast::channel::<u64>(capacity);
    let (done_tx, done) = cb::unbounded();
    let lost = Arc::new(AtomicU64::new(0));
    let threads = (0..readers)
        .map(|_| {
            let mut rx = tx.subscribe();
            let mut tally = Tally::new(n, done_tx.clone());
            let lost = Arc::clone(&lost);
            thread::spawn(move || {
                loop {
                    match rx.blocking_recv() {
                        Ok(v) => tally.got(v),
                        Err(BRecvError::Lagged(skipped)) => {
                            lost.fetch_add(skipped, Ordering::Relaxed);
                            tally.advance(skipped);
                        }
                        Err(BRecvError::Closed) => break,
                    }
                }
            })
        })
        .collect();
    pipe_counting_losses(tx, done, readers, threads, lost, None)
}

type Make = Box<dyn Fn() -> Box<dyn Harness>>;

/// One benchmark group: peers doing the same work.
struct Case {
    name: String,
    burst: usize,
    /// Elements per iteration (deliveries: messages times readers).
    elements: u64,
    /// Peers the ratios are taken against.
    refs: &'static [&'static str],
    peers: Vec<(&'static str, Make)>,
}

/// Whether to add the broker with `Overflow::DropOldest` (`BENCH_DROPOLDEST=1`). Off by
/// default: its reader is slower than a batching producer, so it loses records to `Lagged`
/// and its throughput is not the same work as the lossless peers'.
fn dropoldest() -> bool {
    env_flag("BENCH_DROPOLDEST")
}

fn b1_cases<V: Msg>(label: &str, cases: &mut Vec<Case>) {
    for burst in [1, 10, 100] {
        let mut peers: Vec<(&'static str, Make)> = vec![
            ("crossbeam", Box::new(|| crossbeam::<V>(N))),
            ("flume", Box::new(|| flume::<V>(N))),
            ("kanal", Box::new(|| kanal::<V>(N))),
            (
                "disruptor-sleep",
                Box::new(|| disruptor::<V, _>(N, Sleep::new(DISRUPTOR_SLEEP))),
            ),
            (
                "disruptor-busyspin",
                Box::new(|| disruptor::<V, _>(N, BusySpin)),
            ),
            (
                "broker-block",
                Box::new(|| broker::<V>(N, 1, Overflow::Block)),
            ),
        ];
        if dropoldest() {
            peers.push((
                "broker-dropoldest",
                Box::new(|| broker::<V>(N, 1, Overflow::DropOldest)),
            ));
        }
        cases.push(Case {
            name: format!("B1_spsc_{label}_burst{burst}"),
            burst,
            elements: N,
            refs: &["crossbeam"],
            peers,
        });
    }
}

fn b3_cases(cases: &mut Vec<Case>) {
    for k in [1usize, 4, 8] {
        let mut peers: Vec<(&'static str, Make)> = vec![
            ("tokio-broadcast", Box::new(move || tokio_broadcast(N, k))),
            ("crossbeam-xK", Box::new(move || crossbeam_fanout(N, k))),
            (
                "broker-block",
                Box::new(move || broker::<u64>(N, k, Overflow::Block)),
            ),
        ];
        if dropoldest() {
            peers.push((
                "broker-dropoldest",
                Box::new(move || broker::<u64>(N, k, Overflow::DropOldest)),
            ));
        }
        cases.push(Case {
            name: format!("B3_fanout_k{k}"),
            burst: 1,
            elements: N * k as u64,
            refs: &["tokio-broadcast", "crossbeam-xK"],
            peers,
        });
    }
}

fn all_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    b1_cases::<u64>("8B", &mut cases);
    b1_cases::<Bytes64>("64B", &mut cases);
    b3_cases(&mut cases);
    cases
}

fn criterion_cases(c: &mut Criterion, cases: &[Case]) {
    for case in cases {
        let mut group = c.benchmark_group(&case.name);
        group.throughput(Throughput::Elements(case.elements));
        for (peer, make) in &case.peers {
            if peer.ends_with("busyspin") && !env_flag("BENCH_BUSYSPIN") {
                continue;
            }
            // Built on first use, so that a filtered-out peer starts no thread (and no
            // busy-spinning reader).
            let mut harness: Option<Box<dyn Harness>> = None;
            group.bench_function(*peer, |b| {
                let h = harness.get_or_insert_with(make);
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        h.run(N, case.burst);
                    }
                    start.elapsed()
                });
            });
            if let Some(h) = harness
                && h.lost() > 0
            {
                eprintln!("{}/{peer}: readers lost {} records", case.name, h.lost());
            }
        }
        group.finish();
    }
}

/// B6: replay of a long log from offset 0.
fn replay(c: &mut Criterion, records: u64) {
    let broker = Broker::new();
    let topic: Topic<u64> = broker.topic("replay", TopicConfig::new()).expect("topic");
    let producer = topic.producer();
    let fill = Instant::now();
    let batch = 1024u64;
    let mut next = 0;
    while next < records {
        let len = batch.min(records - next);
        let values = (0..len as usize).map(|k| next + k as u64);
        producer
            .send_batch_blocking(0, values)
            .map_err(|_| "send")
            .expect("fill");
        next += len;
    }
    eprintln!(
        "B6: appended {records} records in {:.2?} (unbounded topic)",
        fill.elapsed()
    );
    let floor: Vec<u64> = (0..records).collect();

    let mut group = c.benchmark_group("B6_replay");
    group.throughput(Throughput::Elements(records));
    group.sampling_mode(criterion::SamplingMode::Flat);
    group.bench_function("broker-try_recv", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut reader = topic.consumer(Start::Offset(0)).expect("reader");
                let mut count = 0u64;
                let mut sum = 0u64;
                while let Ok(record) = reader.try_recv() {
                    sum = sum.wrapping_add(*record.value());
                    count += 1;
                }
                assert_eq!(count, records, "replay read everything");
                black_box(sum);
            }
            start.elapsed()
        });
    });
    group.bench_function("vec-scan-floor", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for v in black_box(&floor) {
                sum = sum.wrapping_add(*v);
            }
            black_box(sum)
        });
    });
    group.finish();
}

/// One measurement of one peer in one round.
struct Sample {
    per_sec: f64,
    cpu_ns_per_elem: f64,
}

/// Runs every case's peers interleaved and prints ratios to the reference peers.
fn interleaved(cases: &[Case], rounds: usize, reps: usize, min_time: Duration) {
    let max_time = Duration::from_millis(env_or("BENCH_MAX_MS", 1000));
    println!(
        "\n## Interleaved rounds: {rounds} rounds per peer, each at least {reps} iterations of \
         {N} messages and {min_time:?}; the order rotates each round\n"
    );
    for case in cases {
        let case_start = Instant::now();
        let peers = case.peers.len();
        let mut samples: Vec<Vec<Sample>> = (0..peers).map(|_| Vec::new()).collect();
        let mut lost = vec![0u64; peers];
        for round in 0..rounds {
            for k in 0..peers {
                let p = (round + k) % peers;
                let mut h = (case.peers[p].1)();
                h.run(N, case.burst); // warm-up
                let lost_before = h.lost();
                let cpu = live_threads_cpu_ns("self");
                let start = Instant::now();
                let mut done = 0u64;
                // At least `reps` iterations and `min_time`: the kernel updates a running
                // thread's CPU time only at scheduler ticks (4 ms here).
                // ... but not past `max_time` once one iteration is done (a busy-spinning
                // pair that shares a core with a third thread can take a second per
                // iteration).
                while done < reps as u64 || start.elapsed() < min_time {
                    if done > 0 && start.elapsed() > max_time {
                        break;
                    }
                    h.run(N, case.burst);
                    done += 1;
                }
                let wall = start.elapsed().as_secs_f64();
                let cpu = live_threads_cpu_ns("self").saturating_sub(cpu) as f64;
                let lost_now = h.lost() - lost_before;
                lost[p] += lost_now;
                drop(h);
                // Records lost to `Lagged` were not delivered: they do not count.
                let elems = (case.elements * done) as f64 - lost_now as f64;
                samples[p].push(Sample {
                    per_sec: elems / wall,
                    cpu_ns_per_elem: cpu / elems,
                });
            }
        }
        println!(
            "### {} (burst {}; {:.1} s)\n",
            case.name,
            case.burst,
            case_start.elapsed().as_secs_f64()
        );
        let mut header =
            "| peer | M elem/s delivered (median) | min | max | CPU ns/elem |".to_owned();
        let mut rule = "|---|---:|---:|---:|---:|".to_owned();
        for r in case.refs {
            header.push_str(&format!(" x {r} (median [min, max]) |"));
            rule.push_str("---|");
        }
        header.push_str(" lost |");
        rule.push_str("---:|");
        println!("{header}\n{rule}");
        for (p, (name, _)) in case.peers.iter().enumerate() {
            let rates: Vec<f64> = samples[p].iter().map(|s| s.per_sec / 1e6).collect();
            let cpu: Vec<f64> = samples[p].iter().map(|s| s.cpu_ns_per_elem).collect();
            let (lo, hi) = min_max(&rates);
            let mut line = format!(
                "| {name} | {:.2} | {lo:.2} | {hi:.2} | {:.0} |",
                median(&rates),
                median(&cpu)
            );
            for r in case.refs {
                let q = case
                    .peers
                    .iter()
                    .position(|(n, _)| n == r)
                    .expect("reference peer");
                let ratios: Vec<f64> = samples[p]
                    .iter()
                    .zip(&samples[q])
                    .map(|(a, b)| a.per_sec / b.per_sec)
                    .collect();
                let (lo, hi) = min_max(&ratios);
                line.push_str(&format!(" {:.2}x [{lo:.2}, {hi:.2}] |", median(&ratios)));
            }
            line.push_str(&format!(" {} |", lost[p]));
            println!("{line}");
        }
        println!();
    }
}

fn main() {
    // Criterion's test mode (`cargo test --benches`) runs each benchmark once, without the
    // `--bench` flag; keep that quick.
    let bench_mode = bench_mode();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        // Short analysis on a small machine: no plots, fewer bootstrap resamples.
        .without_plots()
        .nresamples(10_000)
        .configure_from_args();
    let cases = all_cases();
    criterion_cases(&mut c, &cases);
    replay(&mut c, if bench_mode { REPLAY_RECORDS } else { 100_000 });
    c.final_summary();
    let rounds: usize = env_or("BENCH_ROUNDS", 5);
    if bench_mode && rounds > 0 {
        let min_time = Duration::from_millis(env_or("BENCH_MIN_MS", 150));
        interleaved(
            &cases,
            rounds,
            env_or("BENCH_REPS", 3usize).max(1),
            min_time,
        );
    }
}
