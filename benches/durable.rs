//! File-backed topics (issue "durable file-backed topics"): append throughput and per-append
//! latency for each durability level, with 1 and 4 producers; replay throughput from disk
//! (recovery + replay on open, and `PartitionLog::read_from`) against replay from memory (B6).
//!
//! Run with: `cargo bench -p dataflow-benches --bench durable` (files under the system temp directory; about a
//! minute). `DURABLE_RECORDS` sets the records per run (default 50 000).
//!
//! A second table runs async producers (`send().await` per record, and `send_batch` of 100,
//! tasks on a 2-worker tokio runtime) beside a task that ticks every millisecond, and reports
//! how late its ticks came: file work inside an async send delays every other task of the
//! runtime.
//!
//! The last table kills a producer process with SIGKILL at random points (`DURABLE_KILLS`
//! rounds per durability level, default 5), reopens its files and counts the acknowledged
//! records that are gone: what each level's acknowledgement survives when the process dies.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use broker::storage::fs::OsFs;
use broker::storage::{Durability, PartitionLog, Storage, StorageConfig};
use broker::{Broker, Start, Topic, TopicConfig};
use common::settings::env_or;
use common::stats::us;
use hdrhistogram::Histogram;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("durable-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The replay topic under `dir`: created, or recovered from its files.
fn open_replay_topic(broker: &Broker, dir: &Path) -> Topic<[u64; 4]> {
    broker
        .durable_topic::<[u64; 4]>(
            "replay",
            TopicConfig::new(),
            &Storage::dir(dir).durability(Durability::Never),
        )
        .unwrap()
}

struct Run {
    label: String,
    elapsed: Duration,
    count: u64,
    latency: Histogram<u64>,
}

fn append_run(durability: Durability, producers: u64, total: u64) -> Run {
    let dir = fresh_dir(&format!("{durability:?}-{producers}").replace(['(', ')', ' ', '.'], ""));
    let broker = Broker::new();
    let topic = broker
        .durable_topic::<[u64; 4]>(
            "bench",
            TopicConfig::new(),
            &Storage::dir(&dir).durability(durability),
        )
        .unwrap();
    let per = total / producers;
    let started = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|id| {
            let producer = topic.producer();
            thread::spawn(move || {
                let mut latency = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
                for i in 0..per {
                    let t = Instant::now();
                    producer.send_blocking([id, i, 0, 0]).unwrap();
                    latency
                        .record(t.elapsed().as_nanos().max(1) as u64)
                        .unwrap();
                }
                latency
            })
        })
        .collect();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    for handle in handles {
        latency.add(handle.join().unwrap()).unwrap();
    }
    let elapsed = started.elapsed();
    drop(topic);
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        label: format!("{durability:?}, {producers} producer(s)"),
        elapsed,
        count: per * producers,
        latency,
    }
}

/// Async appends: `tasks` tasks each append their share of `total` records on a 2-worker
/// runtime (`send().await` per record, or `send_batch(..).await` of `batch` records), while
/// another task ticks every millisecond. Returns records/s and the latest a tick came, in
/// milliseconds.
fn async_run(durability: Durability, tasks: u64, batch: u64, total: u64) -> (f64, f64) {
    let dir = fresh_dir(&format!("async-{durability:?}-{tasks}").replace(['(', ')', ' ', '.'], ""));
    let broker = Broker::new();
    let topic = broker
        .durable_topic::<[u64; 4]>(
            "bench",
            TopicConfig::new(),
            &Storage::dir(&dir).durability(durability),
        )
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let per = total / tasks;
    let (rate, late) = runtime.block_on(async {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = tokio::spawn({
            let done = Arc::clone(&done);
            async move {
                let mut interval = tokio::time::interval(Duration::from_millis(1));
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut latest = Duration::ZERO;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let due = interval.tick().await;
                    latest = latest.max(due.elapsed());
                }
                latest
            }
        });
        let started = Instant::now();
        let senders: Vec<_> = (0..tasks)
            .map(|id| {
                let producer = topic.producer();
                tokio::spawn(async move {
                    if batch == 1 {
                        for i in 0..per {
                            producer.send([id, i, 0, 0]).await.unwrap();
                        }
                        return;
                    }
                    for first in (0..per).step_by(batch as usize) {
                        let values: Vec<[u64; 4]> = (first..(first + batch).min(per))
                            .map(|i| [id, i, 0, 0])
                            .collect();
                        producer.send_batch(0, values).await.unwrap();
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
        let elapsed = started.elapsed();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let late = ticker.await.unwrap();
        (
            (per * tasks) as f64 / elapsed.as_secs_f64(),
            late.as_secs_f64() * 1e3,
        )
    });
    drop(topic);
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
    (rate, late)
}

/// The child side of the SIGKILL rounds: appends until killed, writing each acknowledged
/// offset (8 bytes, little-endian) to standard output as soon as `send_blocking` returns.
fn kill_child(spec: &str) {
    use std::io::Write;
    let (dir, level) = spec.split_once('|').expect("DIR|LEVEL");
    let durability = match level {
        "never" => Durability::Never,
        "always" => Durability::Always,
        ms => Durability::Interval(Duration::from_millis(ms.parse().expect("interval in ms"))),
    };
    let broker = Broker::new();
    let topic = broker
        .durable_topic::<[u64; 4]>(
            "kill",
            TopicConfig::new(),
            &Storage::dir(dir).durability(durability),
        )
        .unwrap();
    let producer = topic.producer();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let at = producer.send_blocking([i, 0, 0, 0]).unwrap();
        out.write_all(&at.offset.to_le_bytes()).unwrap();
        out.flush().unwrap();
    }
}

/// SIGKILL rounds for one durability level: (acknowledged, lost, most lost in one round).
fn kill_rounds(
    level: &str,
    rounds: u64,
    acks: std::ops::Range<u64>,
    seed: &mut u64,
) -> (u64, u64, u64) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let (mut acked_total, mut lost_total, mut worst) = (0, 0, 0);
    for round in 0..rounds {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let kill_after = acks.start + *seed % (acks.end - acks.start);
        let dir = fresh_dir(&format!("kill-{level}-{round}"));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("DURABLE_KILL_CHILD", format!("{}|{level}", dir.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut acked = 0u64;
        let mut offset = [0u8; 8];
        while acked < kill_after && stdout.read_exact(&mut offset).is_ok() {
            acked = u64::from_le_bytes(offset) + 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let broker = Broker::new();
        let topic = broker
            .durable_topic::<[u64; 4]>("kill", TopicConfig::new(), &Storage::dir(&dir))
            .unwrap();
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let mut kept = 0u64;
        while let Ok(record) = reader.try_recv() {
            if record.offset() < acked && record.value()[0] == record.offset() {
                kept += 1;
            }
        }
        drop((reader, topic, broker));
        let _ = std::fs::remove_dir_all(&dir);
        let lost = acked - kept.min(acked);
        acked_total += acked;
        lost_total += lost;
        worst = worst.max(lost);
    }
    (acked_total, lost_total, worst)
}

fn main() {
    if let Ok(spec) = std::env::var("DURABLE_KILL_CHILD") {
        kill_child(&spec);
        return;
    }
    let total: u64 = env_or("DURABLE_RECORDS", 50_000);
    println!(
        "# File-backed appends: {total} records of 32 bytes per run, files in {:?}\n",
        std::env::temp_dir()
    );
    println!("| durability, producers | records/s | p50 µs | p99 µs | p99.9 µs | max µs |");
    println!("|---|---:|---:|---:|---:|---:|");
    let levels = [
        (Durability::Never, total),
        (Durability::Interval(Duration::from_millis(10)), total),
        // fsync per append is slow on any disk: fewer records keep the run short.
        (Durability::Always, total / 10),
    ];
    for (durability, count) in levels {
        for producers in [1, 4] {
            let run = append_run(durability, producers, count);
            println!(
                "| {} | {:.0} | {} | {} | {} | {} |",
                run.label,
                run.count as f64 / run.elapsed.as_secs_f64(),
                us(run.latency.value_at_quantile(0.5)),
                us(run.latency.value_at_quantile(0.99)),
                us(run.latency.value_at_quantile(0.999)),
                us(run.latency.max()),
            );
        }
    }

    println!(
        "\n# Async appends (`send().await`), tasks on a 2-worker tokio runtime, beside a task that ticks every millisecond\n"
    );
    println!("| durability, tasks | records/s | latest tick, ms |");
    println!("|---|---:|---:|");
    for (durability, count) in levels {
        for (tasks, batch) in [(1, 1), (8, 1), (1, 100)] {
            let (rate, late) = async_run(durability, tasks, batch, count);
            let how = if batch == 1 {
                String::new()
            } else {
                format!(", batches of {batch}")
            };
            println!("| {durability:?}, {tasks} task(s){how} | {rate:.0} | {late:.1} |");
        }
    }

    // Replay: from memory (a reader from offset 0), from disk on open (recovery + replay into
    // memory), and straight from the segment files through the offset index.
    let dir = fresh_dir("replay");
    let replayed = total * 4;
    {
        let broker = Broker::new();
        let topic = open_replay_topic(&broker, &dir);
        let producer = topic.producer();
        for i in 0..replayed {
            producer.send_blocking([i, 0, 0, 0]).unwrap();
        }
        topic.sync().unwrap();
        let started = Instant::now();
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let mut n = 0u64;
        while reader.try_recv().is_ok() {
            n += 1;
        }
        let memory = started.elapsed();
        println!("\n# Replay of {replayed} records\n");
        println!("| from | records/s |");
        println!("|---|---:|");
        println!(
            "| memory (a reader from offset 0) | {:.0} |",
            n as f64 / memory.as_secs_f64()
        );
    }
    let started = Instant::now();
    let broker = Broker::new();
    let topic = open_replay_topic(&broker, &dir);
    let opened = started.elapsed();
    assert_eq!(topic.end_offsets(), vec![replayed]);
    println!(
        "| disk: reopen (recover, check every CRC, decode, replay into memory) | {:.0} |",
        replayed as f64 / opened.as_secs_f64()
    );
    drop(topic);
    drop(broker);
    let (mut log, _, _) = PartitionLog::open(
        Arc::new(OsFs),
        &dir.join("replay").join("0"),
        StorageConfig {
            durability: Durability::Never,
            ..StorageConfig::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let mut offset = 0;
    while offset < replayed {
        let batch = log.read_from(offset, 10_000).unwrap();
        offset = batch.last().map_or(replayed, |r| r.offset + 1);
    }
    println!(
        "| disk: `read_from` through the offset index, 10 000 at a time (re-reads each segment file per batch) | {:.0} |",
        replayed as f64 / started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    let rounds: u64 = env_or("DURABLE_KILLS", 5);
    println!(
        "\n# SIGKILL of a producer process, {rounds} rounds per level, killed after a random number of acknowledgements\n"
    );
    println!("| durability | acknowledged | lost | lost % | most lost in a round |");
    println!("|---|---:|---:|---:|---:|");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let levels: [(&str, &str, std::ops::Range<u64>); 3] = [
        ("Never", "never", 20_000..200_000),
        ("Interval(50 ms)", "50", 20_000..200_000),
        // An fsync per append: fewer acknowledgements keep the rounds short.
        ("Always", "always", 200..2_000),
    ];
    for (label, level, acks) in levels {
        let (acked, lost, worst) = kill_rounds(level, rounds, acks, &mut seed);
        println!(
            "| {label} | {acked} | {lost} | {:.3} | {worst} |",
            100.0 * lost as f64 / acked.max(1) as f64
        );
    }
}
