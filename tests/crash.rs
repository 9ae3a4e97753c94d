//! R20: a pipeline process SIGKILLed at seeded random points, 20 times for each shape (fused,
//! `key_by`, `merge`, async stage, fan-out to two sinks), on file-backed topics; then a run to
//! the end. Checked: no input lost; exactly-once: no output twice; at-least-once: no output
//! more often than there were runs.
//!
//! The seed is printed; `R20_SEED=<seed>` replays the kill points. `R20_KILLS` and
//! `R20_RECORDS` size the test (20 and 3000 by default), `R20_SHAPES=keyed,merged` picks
//! shapes (all by default), `R20_DURABILITY` the topics' fsync policy (`always` by default).
//! A longer soak by hand: `R20_KILLS=200 R20_RECORDS=100000 cargo test --test crash --
//! --nocapture`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dataflow::backend::Connection;
use dataflow::{Guarantee, PipelineOptions, Sink, Source, TopicSpec, pipeline};
use support::KillPoints;
use support::pipelines::{Result, runtime};

/// Carries the shape, the guarantee and the directory to a child process.
const CHILD_ENV: &str = "DATAFLOW_R20_CHILD";

#[pipeline]
fn fused(input: Source<u64>, out: Sink<u64>) {
    input.map(|x: u64| x).filter(|_: &u64| true).to(out);
}

#[pipeline]
fn keyed(input: Source<u64>, out: Sink<u64>) {
    input
        .key_by(|x: &u64| x % 7)
        .map(|(_, x): (u64, u64)| x)
        .to(out);
}

#[pipeline]
fn merged(input: Source<u64>, other: Source<u64>, out: Sink<u64>) {
    input.merge(other).to(out);
}

#[pipeline]
fn awaited(input: Source<u64>, out: Sink<u64>) {
    input.map_async(|x: u64| async move { x }, 8).to(out);
}

#[pipeline]
fn fanned(input: Source<u64>, out: Sink<u64>, copy: Sink<u64>) {
    let x = input.map(|x: u64| x);
    x.to(out);
    x.to(copy);
}

/// A running count per key: its state must come back after every crash.
#[pipeline]
fn counted(input: Source<u64>, counts: Sink<(u64, u64)>) {
    input.key_by(|x: &u64| x % KEYS).count().to(counts);
}

/// Keys of `counted`.
const KEYS: u64 = 13;

/// The shapes, and the sinks each writes (`counted` writes `(key, count)` pairs).
const SHAPES: [(&str, &[&str]); 6] = [
    ("fused", &["out"]),
    ("keyed", &["out"]),
    ("merged", &["out"]),
    ("awaited", &["out"]),
    ("fanned", &["out", "copy"]),
    ("counted", &["counts"]),
];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn url(dir: &Path) -> String {
    let durability = std::env::var("R20_DURABILITY").unwrap_or_else(|_| "always".to_owned());
    format!("file://{}?durability={durability}", dir.display())
}

/// The child role: runs `shape` on `dir` until every input is committed, then stops cleanly.
#[test]
fn crash_child() -> Result {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return Ok(()); // only a child process of R20 runs this
    };
    let mut parts = spec.splitn(3, ':');
    let (shape, guarantee, dir) = (
        parts.next().expect("shape"),
        parts.next().expect("guarantee"),
        PathBuf::from(parts.next().expect("dir")),
    );
    let guarantee = match guarantee {
        "once" => Guarantee::ExactlyOnce,
        _ => Guarantee::AtLeastOnce,
    };
    runtime().block_on(async {
        let connection = Connection::open(&url(&dir)).await?;
        let options = PipelineOptions::new()
            .connection(&connection)
            .group(shape)
            .guarantee(guarantee)
            .checkpoint_every(Duration::from_millis(50));
        let running = match shape {
            "fused" => {
                Fused::builder()
                    .input("in")
                    .out("out")
                    .options(options)
                    .start()
                    .await?
            }
            "keyed" => {
                Keyed::builder()
                    .input("in")
                    .out("out")
                    .options(options)
                    .start()
                    .await?
            }
            "merged" => {
                Merged::builder()
                    .input("in")
                    .other("other")
                    .out("out")
                    .options(options)
                    .start()
                    .await?
            }
            "awaited" => {
                Awaited::builder()
                    .input("in")
                    .out("out")
                    .options(options)
                    .start()
                    .await?
            }
            "counted" => {
                Counted::builder()
                    .input("in")
                    .counts("counts")
                    .options(options)
                    .start()
                    .await?
            }
            _ => {
                Fanned::builder()
                    .input("in")
                    .out("out")
                    .copy("copy")
                    .options(options)
                    .start()
                    .await?
            }
        };
        // Done once the sources' groups have committed every record.
        let broker = connection.broker().expect("file:// is an embedded broker");
        let inputs: &[&str] = if shape == "merged" {
            &["in", "other"]
        } else {
            &["in"]
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut done = true;
            for (segment, input) in inputs.iter().enumerate() {
                let topic = broker.open_topic::<u64>(input)?;
                let group = topic.group(&format!("{shape}.segment-{segment}"))?;
                let ends = topic.end_offsets();
                done &= (0..ends.len() as u32)
                    .all(|p| group.committed(p).unwrap_or(0) >= ends[p as usize]);
            }
            if done {
                break;
            }
            if Instant::now() > deadline {
                let metrics = running.metrics();
                panic!(
                    "the child never caught up: {metrics}{:?}",
                    running.shutdown().await
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        running.shutdown().await?;
        Ok(())
    })
}

/// Writes the inputs: `records` numbers over two partitions (for `merged`, split over two
/// topics).
fn prefill(dir: &Path, shape: &str, records: u64) -> Result {
    runtime().block_on(async {
        let connection = Connection::open(&url(dir)).await?;
        let mut input = connection
            .producer::<u64>(TopicSpec::new("in").partitions(2))
            .await?;
        let mut other = connection
            .producer::<u64>(TopicSpec::new("other").partitions(2))
            .await?;
        for chunk in (0..records).step_by(100) {
            let values = chunk..(chunk + 100).min(records);
            let partition = (chunk / 100 % 2) as u32;
            if shape == "merged" && chunk / 100 % 3 == 2 {
                other.send_batch(partition, values).await?;
            } else {
                input.send_batch(partition, values).await?;
            }
        }
        let broker = connection.broker().expect("embedded");
        for name in ["in", "other"] {
            broker.open_topic::<u64>(name)?.sync()?;
        }
        Result::Ok(())
    })
}

/// How often each value is in `sink`.
fn read_sink(dir: &Path, sink: &str) -> Result<BTreeMap<u64, u64>> {
    runtime().block_on(async {
        let connection = Connection::open(&url(dir)).await?;
        let mut reader = connection.reader::<u64>(sink, "r20-check").await?;
        let mut seen = BTreeMap::new();
        loop {
            let batch = reader.recv_batch(4096, Duration::from_millis(100)).await?;
            if batch.is_empty() {
                break;
            }
            for record in batch {
                *seen.entry(record.value.map_err(|e| e.error)?).or_default() += 1;
            }
        }
        Result::Ok(seen)
    })
}

/// Every `(key, count)` update in `sink`, in the order of each key's partition.
fn read_counts(dir: &Path, sink: &str) -> Result<Vec<(u64, u64)>> {
    runtime().block_on(async {
        let connection = Connection::open(&url(dir)).await?;
        let mut reader = connection.reader::<(u64, u64)>(sink, "r20-check").await?;
        let mut updates = Vec::new();
        loop {
            let batch = reader.recv_batch(4096, Duration::from_millis(100)).await?;
            if batch.is_empty() {
                break;
            }
            for record in batch {
                updates.push(record.value.map_err(|e| e.error)?);
            }
        }
        Result::Ok(updates)
    })
}

/// `counted`: no update lost, each key's last count the true one (its state came back after
/// every crash); exactly-once: each key's updates exactly 1, 2, ... n, once each.
fn check_counts(dir: &Path, guarantee: &str, records: u64, kills: u64) -> Result {
    let updates = read_counts(dir, "counts")?;
    let mut per_key: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (key, count) in updates {
        per_key.entry(key).or_default().push(count);
    }
    for key in 0..KEYS {
        let expected = (0..records).filter(|x| x % KEYS == key).count() as u64;
        let mut counts = per_key.remove(&key).unwrap_or_default();
        assert_eq!(
            counts.iter().max().copied(),
            Some(expected),
            "counted/{guarantee}: key {key}"
        );
        counts.sort_unstable();
        counts.dedup();
        assert_eq!(
            counts,
            (1..=expected).collect::<Vec<_>>(),
            "counted/{guarantee}: key {key} skipped a count"
        );
    }
    let updates: usize = read_counts(dir, "counts")?.len();
    eprintln!(
        "r20 counted/{guarantee}: {records} records, {kills} kills, {} duplicate updates",
        updates as u64 - records
    );
    if guarantee == "once" {
        assert_eq!(updates as u64, records, "counted/once: an update twice");
    }
    Ok(())
}

fn spawn_child(shape: &str, guarantee: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "crash_child", "--nocapture"])
        .env(CHILD_ENV, format!("{shape}:{guarantee}:{}", dir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("a child process")
}

/// R20 for one guarantee: every shape, killed and restarted, then run to the end.
fn r20(guarantee: &str) -> Result {
    let kills = env_or("R20_KILLS", 20);
    let records = env_or("R20_RECORDS", 3000);
    let mut points = KillPoints::from_env_named("R20_SEED");
    let only = std::env::var("R20_SHAPES").ok();
    for (shape, sinks) in SHAPES {
        if only
            .as_deref()
            .is_some_and(|only| !only.split(',').any(|s| s == shape))
        {
            continue;
        }
        let dir = std::env::temp_dir().join(format!(
            "dataflow-r20-{shape}-{guarantee}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        prefill(&dir, shape, records)?;
        for _ in 0..kills {
            let mut child = spawn_child(shape, guarantee, &dir);
            std::thread::sleep(points.delay(400));
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
        let child = spawn_child(shape, guarantee, &dir);
        let output = child.wait_with_output()?;
        assert!(
            output.status.success(),
            "{shape}/{guarantee}: the last run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        if shape == "counted" {
            check_counts(&dir, guarantee, records, kills)?;
            std::fs::remove_dir_all(&dir)?;
            continue;
        }
        for sink in sinks {
            let seen = read_sink(&dir, sink)?;
            let lost: Vec<u64> = (0..records).filter(|v| !seen.contains_key(v)).collect();
            assert!(lost.is_empty(), "{shape}/{guarantee}: {sink} lost {lost:?}");
            let duplicates: u64 = seen.values().map(|n| n - 1).sum();
            let most = seen.values().copied().max().unwrap_or(0);
            eprintln!(
                "r20 {shape}/{guarantee} {sink}: {records} records, {kills} kills, {duplicates} duplicates"
            );
            if guarantee == "once" {
                assert_eq!(duplicates, 0, "{shape}/{guarantee}: {sink} has duplicates");
            } else {
                assert!(
                    most <= kills + 1,
                    "{shape}: a value {most} times in {kills} + 1 runs"
                );
            }
        }
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}

#[test]
fn r20_at_least_once_loses_nothing_through_sigkills() -> Result {
    r20("least")
}

#[test]
fn r20_exactly_once_writes_each_output_once_through_sigkills() -> Result {
    r20("once")
}
