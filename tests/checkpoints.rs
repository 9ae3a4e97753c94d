//! Checkpoints of pipelines in one process: taken while records flow, restored on restart,
//! and refused when they do not verify or do not fit.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dataflow::backend::Connection;
use dataflow::{PipelineOptions, Sink, Source, StartError, StateError, TopicSpec, pipeline};
use support::pipelines::{Result, runtime};

fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    std::env::temp_dir().join(format!("dataflow-{name}-{nanos}"))
}

/// Tags each number with its key: a repartition, so that the sink is one segment away from
/// the source.
#[pipeline]
fn tagged(input: Source<u64>, out: Sink<(u64, u64)>) {
    input.key_by(|x: &u64| x % 5).to(out);
}

/// Another shape, for the graph-changed test.
#[pipeline]
fn doubled(input: Source<u64>, out: Sink<(u64, u64)>) {
    input.map(|x: u64| x * 2).key_by(|x: &u64| x % 5).to(out);
}

/// The checkpoint files in `dir`.
fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Reads every record of `topic` (by a fresh group) until `n` arrived or 30 s pass.
async fn read_all(connection: &Connection, topic: &str, n: usize) -> Result<Vec<(u64, u64)>> {
    let mut reader = connection
        .reader::<(u64, u64)>(topic, &format!("check-{}", std::process::id()))
        .await?;
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < n && std::time::Instant::now() < deadline {
        for record in reader.recv_batch(1024, Duration::from_millis(100)).await? {
            seen.push(record.value.map_err(|e| e.error)?);
        }
    }
    reader.leave().await?;
    Ok(seen)
}

#[test]
fn checkpoints_are_taken_while_records_flow_and_a_restart_resumes_from_the_last() -> Result {
    let dir = temp_dir("checkpoints-flow");
    let url = format!("file://{}?durability=never", dir.display());
    let rt = runtime();
    rt.block_on(async {
        let options = PipelineOptions::new()
            .group("flow")
            .checkpoint_every(Duration::from_millis(20));
        // First run: records arrive over a while, so several checkpoints are taken.
        {
            let connection = Connection::open(&url).await?;
            let mut producer = connection
                .producer::<u64>(TopicSpec::new("in").partitions(2))
                .await?;
            let running = Tagged::builder()
                .input("in")
                .out(TopicSpec::new("out").partitions(2))
                .options(options.clone().connection(&connection))
                .start()
                .await?;
            for chunk in 0..20u64 {
                producer
                    .send_batch((chunk % 2) as u32, chunk * 100..(chunk + 1) * 100)
                    .await?;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let files = checkpoint_files(&dir.join("_checkpoints").join("flow"));
            assert_eq!(
                files.len(),
                1,
                "the latest checkpoint alone is kept: {files:?}"
            );
            let epoch: u64 = files[0]
                .file_stem()
                .and_then(|s| s.to_str()?.strip_prefix("checkpoint-")?.parse().ok())
                .expect("checkpoint-<epoch>.ckpt");
            assert!(
                epoch > 2,
                "checkpoints were taken while records flowed: {epoch}"
            );
            running.shutdown().await?;
        }
        // Second run, same directory: it resumes after the last checkpoint (taken at the
        // stop), so nothing is read twice; then new records flow as before.
        let connection = Connection::open(&url).await?;
        let running = Tagged::builder()
            .input("in")
            .out("out")
            .options(options.connection(&connection))
            .start()
            .await?;
        let mut producer = connection.producer::<u64>("in").await?;
        producer.send_batch(0, 2000..2100).await?;
        let out = read_all(&connection, "out", 2100).await?;
        running.shutdown().await?;
        let mut values: Vec<u64> = out.iter().map(|(_, v)| *v).collect();
        values.sort_unstable();
        assert_eq!(values, (0..2100).collect::<Vec<_>>(), "each record once");
        assert!(out.iter().all(|(k, v)| *k == v % 5));
        Result::Ok(())
    })?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Starts `tagged` (or `doubled`) with the checkpoints of `state` on a fresh embedded broker.
async fn start_with_state(
    state: &Path,
    prefix: &str,
    doubled: bool,
) -> std::result::Result<dataflow::Running, StartError> {
    let options = PipelineOptions::new().group(prefix).state_dir(state);
    if doubled {
        Doubled::builder()
            .input("in")
            .out("out")
            .options(options)
            .start()
            .await
    } else {
        Tagged::builder()
            .input("in")
            .out("out")
            .options(options)
            .start()
            .await
    }
}

#[test]
fn a_checkpoint_that_does_not_verify_or_fit_is_refused_never_a_fresh_start() -> Result {
    let state = temp_dir("checkpoints-refused");
    let rt = runtime();
    rt.block_on(async {
        // A run that stops cleanly leaves its last checkpoint.
        start_with_state(&state, "p", false)
            .await?
            .shutdown()
            .await?;
        let files = checkpoint_files(&state);
        assert_eq!(files.len(), 1);
        assert!(
            start_with_state(&state, "p", false)
                .await?
                .shutdown()
                .await
                .is_ok()
        );

        // Another pipeline (group prefix) does not take it.
        let other = start_with_state(&state, "q", false).await;
        assert!(
            matches!(
                other,
                Err(StartError::State(StateError::OtherPipeline { .. }))
            ),
            "{other:?}"
        );
        // Nor does another shape of the same pipeline.
        let changed = start_with_state(&state, "p", true).await;
        assert!(
            matches!(
                changed,
                Err(StartError::State(StateError::GraphChanged { .. }))
            ),
            "{changed:?}"
        );
        // A flipped byte is found.
        let file = &checkpoint_files(&state)[0];
        let mut bytes = std::fs::read(file)?;
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(file, bytes)?;
        let corrupt = start_with_state(&state, "p", false).await;
        assert!(
            matches!(corrupt, Err(StartError::State(StateError::Corrupt { .. }))),
            "{corrupt:?}"
        );
        // Without it, the pipeline starts afresh (by the user's choice).
        std::fs::remove_file(file)?;
        start_with_state(&state, "p", false)
            .await?
            .shutdown()
            .await?;
        Result::Ok(())
    })?;
    std::fs::remove_dir_all(&state)?;
    Ok(())
}

#[test]
fn a_stop_and_restart_on_a_shared_broker_resumes_from_the_last_checkpoint() -> Result {
    let rt = runtime();
    rt.block_on(async {
        let broker = dataflow::broker::Broker::new();
        let connection = Connection::mem(&broker);
        let options = PipelineOptions::new()
            .connection(&connection)
            .group("shared");
        let mut producer = connection
            .producer::<u64>(TopicSpec::new("in").partitions(2))
            .await?;
        let mut counts = BTreeMap::<u64, u64>::new();
        for round in 0..3u64 {
            let running = Tagged::builder()
                .input("in")
                .out(TopicSpec::new("out").partitions(2))
                .options(options.clone())
                .start()
                .await?;
            producer
                .send_batch((round % 2) as u32, round * 50..(round + 1) * 50)
                .await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            running.shutdown().await?;
        }
        for (_, value) in read_all(&connection, "out", 150).await? {
            *counts.entry(value).or_default() += 1;
        }
        assert_eq!(counts.len(), 150);
        assert!(counts.values().all(|&n| n == 1), "no record twice");
        Result::Ok(())
    })
}

#[test]
fn exactly_once_outputs_appear_when_their_checkpoint_is_kept_and_once() -> Result {
    let rt = runtime();
    rt.block_on(async {
        let broker = dataflow::broker::Broker::new();
        let connection = Connection::mem(&broker);
        let options = PipelineOptions::new()
            .connection(&connection)
            .group("once")
            .guarantee(dataflow::Guarantee::ExactlyOnce)
            .checkpoint_every(Duration::from_secs(3600));
        let mut producer = connection.producer::<u64>("in").await?;
        let running = Tagged::builder()
            .input("in")
            .out(TopicSpec::new("out").partitions(2))
            .options(options.clone())
            .start()
            .await?;
        producer.send_batch(0, 0..100).await?;
        // Processed, but held back until a checkpoint covers them: none is visible yet.
        let out = broker.open_topic::<(u64, u64)>("out")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while running.metrics().stage("out").map_or(0, |s| s.count) < 100 {
            assert!(
                std::time::Instant::now() < deadline,
                "the records were never processed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(out.end_offsets().iter().sum::<u64>(), 0, "held back");
        // The stop takes the last checkpoint, and then they are appended, once.
        running.shutdown().await?;
        assert_eq!(out.end_offsets().iter().sum::<u64>(), 100);
        // A restart finds nothing more to do.
        Tagged::builder()
            .input("in")
            .out("out")
            .options(options)
            .start()
            .await?
            .shutdown()
            .await?;
        let mut values: Vec<u64> = read_all(&connection, "out", 100)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        values.sort_unstable();
        assert_eq!(values, (0..100).collect::<Vec<_>>());
        Result::Ok(())
    })
}

#[test]
fn exactly_once_is_refused_where_it_cannot_hold() {
    let rt = runtime();
    let refused = rt.block_on(
        Tagged::builder()
            .input("in")
            .out("out")
            .options(
                PipelineOptions::new()
                    .backend("stdio://")
                    .guarantee(dataflow::Guarantee::ExactlyOnce),
            )
            .start(),
    );
    assert!(
        matches!(refused, Err(StartError::State(StateError::ExactlyOnce(_)))),
        "{refused:?}"
    );
}

/// Panics on every seventh number.
fn brittle(x: u64) -> u64 {
    assert!(!x.is_multiple_of(7), "{x} is a multiple of seven");
    x
}

#[pipeline]
fn brittle_keyed(input: Source<u64>, out: Sink<(u64, u64)>) {
    input.map(brittle).key_by(|x: &u64| x % 5).to(out);
}

/// Stages that panic while checkpoints are taken stall none of them: each panic is a dead
/// letter, and checkpoints go on being taken.
#[test]
fn a_stage_that_panics_does_not_stall_checkpoints() -> Result {
    let state = temp_dir("checkpoints-panics");
    let rt = runtime();
    rt.block_on(async {
        let broker = dataflow::broker::Broker::new();
        let connection = Connection::mem(&broker);
        let running = BrittleKeyed::builder()
            .input("in")
            .out("out")
            .options(
                PipelineOptions::new()
                    .connection(&connection)
                    .state_dir(&state)
                    .checkpoint_every(Duration::from_millis(10)),
            )
            .start()
            .await?;
        let mut producer = connection.producer::<u64>("in").await?;
        for chunk in 0..30u64 {
            producer.send_batch(0, chunk * 10..(chunk + 1) * 10).await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let survivors = (0..300u64).filter(|x| x % 7 != 0).count();
        read_all(&connection, "out", survivors).await?;
        let epoch = |files: Vec<PathBuf>| -> u64 {
            files
                .first()
                .and_then(|f| {
                    f.file_stem()?
                        .to_str()?
                        .strip_prefix("checkpoint-")?
                        .parse()
                        .ok()
                })
                .unwrap_or(0)
        };
        let before = epoch(checkpoint_files(&state));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let after = epoch(checkpoint_files(&state));
        assert!(
            after > before && before > 0,
            "checkpoints stalled at {before}, {after}"
        );
        let metrics = running.shutdown().await?;
        assert_eq!(
            metrics.stage("brittle").expect("its row").failed,
            300 / 7 + 1
        );
        Result::Ok(())
    })?;
    std::fs::remove_dir_all(&state)?;
    Ok(())
}

#[pipeline]
fn key_counts(input: Source<u64>, out: Sink<(u64, u64)>) {
    input.key_by(|x: &u64| *x).count().to(out);
}

/// A state directory on a small, real file system that fills up: a checkpoint that no longer
/// fits fails with a typed error (the stop reports it), the last one that fitted stays whole,
/// and once there is room again the pipeline restarts from it, its counts right.
#[test]
fn a_full_disk_under_the_state_directory_is_an_error_and_never_a_wrong_state() -> Result {
    let Some(disk) = support::small_fs::SmallFs::mount_or_skip("checkpoint-full", 256 << 10) else {
        return Ok(());
    };
    let state = disk.dir().join("state");
    let rt = runtime();
    rt.block_on(async {
        let broker = dataflow::broker::Broker::new();
        let connection = Connection::mem(&broker);
        let options = PipelineOptions::new()
            .connection(&connection)
            .group("full")
            .state_dir(&state);
        let start = |every: Duration| {
            KeyCounts::builder()
                .input("in")
                .out("out")
                .options(options.clone().checkpoint_every(every))
                .start()
        };
        let mut producer = connection.producer::<u64>("in").await?;
        // A small state: its checkpoint fits.
        let running = start(Duration::from_millis(10)).await?;
        producer.send_batch(0, 0..10).await?;
        read_all(&connection, "out", 10).await?;
        running.shutdown().await?;
        let kept = checkpoint_files(&state);
        assert_eq!(kept.len(), 1);
        let good = std::fs::read(&kept[0])?;

        // The disk fills up; the state grows past what is left.
        let free = 16 << 10;
        let filler = disk.dir().join("filler");
        {
            let mut file = std::fs::File::create(&filler)?;
            let mut written = 0;
            let chunk = vec![0u8; 4096];
            while std::io::Write::write_all(&mut file, &chunk).is_ok() {
                written += chunk.len();
            }
            drop(file);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&filler)?
                .set_len((written.saturating_sub(free)) as u64)?;
        }
        // Only the last checkpoint, at the stop, with the whole grown state: it cannot fit.
        let running = start(Duration::from_secs(3600)).await?;
        producer.send_batch(0, 0..20_000).await?;
        read_all(&connection, "out", 20_010).await?;
        let stopped = running.shutdown().await;
        assert!(
            matches!(
                stopped,
                Err(dataflow::PipelineError::State(StateError::Io { .. }))
            ),
            "{stopped:?}"
        );
        // The last checkpoint that fitted is whole.
        let kept = checkpoint_files(&state);
        assert_eq!(kept.len(), 1);
        assert_eq!(
            std::fs::read(&kept[0])?,
            good,
            "the last good checkpoint is untouched"
        );

        // Room again: the restart goes on from it, and the input after it is read again.
        std::fs::remove_file(&filler)?;
        let running = start(Duration::from_millis(10)).await?;
        producer.send_batch(0, [0]).await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut last: BTreeMap<u64, u64> = BTreeMap::new();
        let mut reader = connection.reader::<(u64, u64)>("out", "full-check").await?;
        while last.get(&0) != Some(&3) {
            assert!(
                std::time::Instant::now() < deadline,
                "key 0: {:?}",
                last.get(&0)
            );
            for record in reader.recv_batch(4096, Duration::from_millis(100)).await? {
                let (key, count) = record.value.map_err(|e| e.error)?;
                let best = last.entry(key).or_default();
                *best = count.max(*best);
            }
        }
        running.shutdown().await?;
        // Key 0 was sent three times in all: 1 (first run), 2 (the run whose checkpoints did
        // not fit: its input read again), 3 (now); never more.
        assert!(last.values().all(|&n| n <= 3), "{last:?}");
        Result::Ok(())
    })?;
    drop(disk);
    Ok(())
}
