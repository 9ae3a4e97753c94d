//! Word count: lines are split into words (`flat_map`), repartitioned by word (`key_by`), and
//! counted (`count`); the running counts land in a sink topic.
//!
//! Run with: `cargo run --example word_count` (or `-- --text "to be or not to be"`).

use std::collections::BTreeMap;

use clap::Parser;
use dataflow::broker::{Broker, Start, TopicConfig};
use dataflow::{Sink, Source, pipeline};

fn words(line: String) -> Vec<String> {
    line.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[pipeline]
fn word_count(lines: Source<String>, counts: Sink<(String, u64)>) {
    lines
        .flat_map(words)
        .key_by(|word| word.clone())
        .count()
        .to(counts);
}

const TEXT: &str = "It was the best of times, it was the worst of times, it was the age of \
                    wisdom, it was the age of foolishness, it was the epoch of belief";

/// Counts words with `flat_map`, `key_by` and `count`; prints the five most frequent.
#[derive(Parser)]
struct Args {
    /// The text to count; its lines are the phrases between commas.
    #[arg(long, default_value = TEXT)]
    text: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Args { text } = Args::parse();
    let broker = Broker::new();
    let lines = broker.topic::<String>("lines", TopicConfig::new().partitions(2))?;
    let counts = broker.topic::<(String, u64)>("counts", TopicConfig::new().partitions(2))?;
    let running = WordCount::builder()
        .lines(lines.clone())
        .counts(counts.clone())
        .start()
        .await?;

    let producer = lines.producer();
    for line in text.split(", ") {
        producer.send(line.to_owned()).await?;
    }
    let total_words: usize = text
        .split(", ")
        .map(|line| words(line.to_owned()).len())
        .sum();

    // Each update is a word's new running count: keep the last one per word.
    let mut reader = counts.consumer(Start::Earliest)?;
    let mut last = BTreeMap::new();
    for _ in 0..total_words {
        let record = reader.recv().await?;
        last.insert(record.0.clone(), record.1);
    }
    let mut top: Vec<_> = last.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (word, count) in top.iter().take(5) {
        println!("{count:>3} {word}");
    }
    println!("{}", running.shutdown().await?);
    Ok(())
}
