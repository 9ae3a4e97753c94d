//! A pipeline that survives restarts with its state: word counts on file-backed topics with
//! exactly-once sinks. Each run of the "process" feeds a few lines and stops; the next run goes
//! on from the last checkpoint, so the counts continue and no count is written twice.
//!
//! Run with: `cargo run --example checkpoints` (or `-- --dir ./data --runs 3`). Kill it at any
//! point and run it again with the same `--dir`: the counts still continue.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use dataflow::backend::Connection;
use dataflow::{Guarantee, PipelineOptions, Sink, Source, TopicSpec, pipeline};

/// Counts words across runs that share a directory, exactly once.
#[derive(Parser)]
struct Args {
    /// The directory of the topics and checkpoints (a fresh one in the temporary directory
    /// by default, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How many runs, each a restart of the pipeline on the same directory.
    #[arg(long, default_value_t = 2)]
    runs: u32,
}

fn words(line: String) -> Vec<String> {
    line.split_whitespace().map(str::to_lowercase).collect()
}

#[pipeline]
fn word_count(lines: Source<String>, counts: Sink<(String, u64)>) {
    lines
        .flat_map(words)
        .key_by(|word: &String| word.clone())
        .count()
        .to(counts);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Args { dir, runs } = Args::parse();
    let temporary = dir.is_none();
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "dataflow-checkpoints-example-{}",
            std::process::id()
        ))
    });
    let url = format!("file://{}", dir.display());
    for run in 1..=runs {
        // Each run is a new process as far as the pipeline knows: a new connection, a new
        // embedded broker, the same files.
        let connection = Connection::open(&url).await?;
        let running = WordCount::builder()
            .lines(TopicSpec::new("lines").partitions(2))
            .counts(TopicSpec::new("counts").partitions(2))
            .options(
                PipelineOptions::new()
                    .connection(&connection)
                    .guarantee(Guarantee::ExactlyOnce)
                    .checkpoint_every(Duration::from_millis(100)),
            )
            .start()
            .await?;
        let mut lines = connection.producer::<String>("lines").await?;
        lines
            .send_batch(0, [format!("to be or not to be, run {run}")])
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The stop takes a last checkpoint: the next run goes on from it.
        running.shutdown().await?;
        println!("run {run}: fed one line, stopped");
    }
    // Every count written, once: each word's updates are 1, 2, 3 ... with no repeat.
    let connection = Connection::open(&url).await?;
    let mut reader = connection
        .reader::<(String, u64)>("counts", "example-reader")
        .await?;
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    loop {
        let batch = reader.recv_batch(1024, Duration::from_millis(200)).await?;
        if batch.is_empty() {
            break;
        }
        for record in batch {
            let (word, count) = record.value.map_err(|e| e.error)?;
            counts.entry(word).or_default().push(count);
        }
    }
    for (word, updates) in &counts {
        println!("{word:>6}: {updates:?}");
    }
    assert_eq!(counts.get("to").map(Vec::len), Some(2 * runs as usize));
    if temporary {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
