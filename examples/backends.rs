//! The same pipeline on any backend: the URL on the command line picks it.
//!
//! ```text
//! cargo run --release --example backends                                   # embedded broker (mem://)
//! cargo run --release --example backends -- file://./data                  # file-backed topics in ./data
//! cargo run --release --features redis --example backends -- redis://127.0.0.1:6379
//! cargo run --release --features kafka --example backends -- kafka://127.0.0.1:9092
//! echo '"to be or not to be"' | cargo run --release --example backends -- stdio:// | jq -c .
//! ```
//!
//! Word count with a repartition (`key_by`): the source, the sink and the internal
//! repartition topic all live on the chosen backend. The example feeds the source and reads
//! the sink through the same [`Connection`], so it needs nothing else running for `mem://`
//! or `file://`. On `stdio://` the source is standard input (one JSON string per line) and
//! the sink standard output: the example runs until the input ends, then prints its metrics
//! to standard error.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use dataflow::backend::Connection;
use dataflow::{PipelineOptions, Sink, Source, TopicSpec, pipeline};

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

/// The same word count on the backend the URL names.
#[derive(Parser)]
struct Args {
    /// The backend: `mem://` (the embedded broker), `file://DIR`, `stdio://`,
    /// `redis://HOST:PORT` (feature `redis`) or `kafka://HOST:PORT` (feature `kafka`).
    #[arg(default_value = "mem://")]
    url: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Args { url } = Args::parse();
    let connection = Connection::open(&url).await?;
    if connection.scheme() == "stdio" {
        let running = WordCount::builder()
            .lines("lines")
            .counts("counts")
            .options(PipelineOptions::new().connection(&connection))
            .start()
            .await?;
        eprintln!("{}", running.until_end().await?);
        return Ok(());
    }
    // A fresh run id, so that reruns against a server do not read the previous run's topics.
    let run = format!(
        "run{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let (lines, counts) = (format!("{run}.lines"), format!("{run}.counts"));

    let running = WordCount::builder()
        .lines(TopicSpec::new(&lines).partitions(2))
        .counts(TopicSpec::new(&counts).partitions(2))
        .options(PipelineOptions::new().connection(&connection).group(&run))
        .start()
        .await?;

    let mut producer = connection.producer::<String>(lines.as_str()).await?;
    for (i, line) in TEXT.split(", ").enumerate() {
        producer.send_batch(i as u32 % 2, [line.to_owned()]).await?;
    }
    let total_words = TEXT.split_whitespace().count();

    // Each update is a word's new running count: keep the highest per word.
    let mut reader = connection
        .reader::<(String, u64)>(counts.as_str(), &format!("{run}.reader"))
        .await?;
    let mut last = BTreeMap::new();
    let (mut updates, deadline) = (0, Instant::now() + Duration::from_secs(60));
    while updates < total_words {
        anyhow::ensure!(Instant::now() < deadline, "the counts never arrived");
        for record in reader.recv_batch(256, Duration::from_millis(200)).await? {
            let (word, count) = record.value.map_err(|e| e.error)?;
            let best = last.entry(word).or_insert(0);
            *best = count.max(*best);
            updates += 1;
        }
        reader.commit().await?;
    }
    let mut top: Vec<_> = last.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("on {}:", connection.scheme());
    for (word, count) in top.iter().take(5) {
        println!("{count:>3} {word}");
    }
    println!("{}", running.shutdown().await?);
    Ok(())
}
