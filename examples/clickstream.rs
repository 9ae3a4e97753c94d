//! A clickstream: raw lines are parsed (bad lines go to the dead-letter output), bots are
//! filtered out, clicks are repartitioned by page, and a running count per page is written to
//! a sink topic. Prints the per-stage latency table, the graph, and the dead letters.
//!
//! Run with: `cargo run --release --example clickstream` (`-- --help` lists the options:
//! `--rate`, `--secs`).

use std::time::Duration;

use clap::Parser;
use dataflow::broker::{Broker, Start, TopicConfig};
use dataflow::{Sink, Source, pipeline, stage};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Click {
    user: u64,
    page: String,
}

#[derive(Debug)]
struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot parse click {:?}", self.0)
    }
}

/// `"user page"` -> `Click`.
#[stage]
fn parse(line: String) -> Result<Click, ParseError> {
    let (user, page) = line
        .split_once(' ')
        .ok_or_else(|| ParseError(line.clone()))?;
    let user = user.parse().map_err(|_| ParseError(line.clone()))?;
    Ok(Click {
        user,
        page: page.to_owned(),
    })
}

/// User 0 is the crawler.
#[stage]
fn is_human(click: &Click) -> bool {
    click.user != 0
}

#[pipeline]
fn page_views(raw: Source<String>, views: Sink<(String, u64)>) {
    raw.map(parse)
        .filter(is_human)
        .key_by(|click| click.page.clone(), name = "page")
        .count(name = "views_per_page")
        .to(views);
}

/// A clickstream pipeline under a steady load; prints its latency table, its graph and its
/// dead letters.
#[derive(Parser)]
struct Args {
    /// Clicks per second, sent in a batch every millisecond.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1_000..))]
    rate: u64,
    /// How long the load lasts, in seconds.
    #[arg(long, default_value_t = 3)]
    secs: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Args { rate, secs } = Args::parse();
    let broker = Broker::new();
    let raw = broker.topic::<String>("clicks.raw", TopicConfig::new().partitions(2))?;
    let views = broker.topic::<(String, u64)>("clicks.views", TopicConfig::new().partitions(2))?;

    let running = PageViews::builder()
        .raw(raw.clone())
        .views(views.clone())
        .start()
        .await?;
    println!("{}", PageViews::graph().to_mermaid());

    // A steady load: a batch every millisecond, one line in a thousand malformed.
    let producer = raw.producer();
    let pages = ["/", "/docs", "/pricing", "/blog"];
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let per_tick = rate / 1_000;
    for i in 0..rate * secs {
        if i % per_tick == 0 {
            tick.tick().await;
        }
        let line = match i % 1_000 {
            7 => "garbage".to_owned(),
            _ => format!("{} {}", i % 50, pages[(i % 4) as usize]),
        };
        producer.send(line).await?;
    }

    // Let the pipeline catch up, then stop it: intake stops, in-flight records drain.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dead_letters = running.dead_letters();
    let live_graph = running.to_mermaid();
    let metrics = running.shutdown().await?;
    println!("{metrics}");
    println!("{live_graph}");

    let mut latest = std::collections::BTreeMap::new();
    let mut reader = views.consumer(Start::Earliest)?;
    while let Ok(record) = reader.try_recv() {
        latest.insert(record.0.clone(), record.1);
    }
    println!("views per page: {latest:?}");
    let mut letters = dead_letters.consumer(Start::Earliest)?;
    let mut count = 0;
    while let Ok(letter) = letters.try_recv() {
        if count < 2 {
            println!("dead letter: {}", *letter);
        }
        count += 1;
    }
    println!("{count} dead letters");
    Ok(())
}
