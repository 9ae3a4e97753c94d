//! Dead letters: records a stage rejected, or that did not decode, with what is needed to
//! replay them. The URL on the command line picks the backend.
//!
//! ```text
//! cargo run --example dead_letters                                    # embedded broker (mem://)
//! cargo run --features redis --example dead_letters -- redis://127.0.0.1:6379
//! cargo run --features kafka --example dead_letters -- kafka://127.0.0.1:9092
//! ```
//!
//! Every process sees its own dead letters in `Running::dead_letters`. On Redis or Kafka they
//! are also kept on the backend (`Running::dead_letter_topic`), written before the failed
//! record is committed; the example reads them back from there after the pipeline stopped,
//! through a second connection, as a triage tool in another process would.

use std::time::{Duration, Instant};

use clap::Parser;
use dataflow::backend::Connection;
use dataflow::broker::Start;
use dataflow::{PipelineOptions, Sink, Source, StoredDeadLetter, TopicSpec, pipeline};

/// A price in cents, from text such as `"12.50"`, `"12.5"` or `"12"`.
fn cents(text: String) -> Result<u64, String> {
    let (units, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digit = |c: char| c.to_digit(10).map(u64::from);
    let fraction: Option<u64> = match fraction.chars().map(digit).collect::<Option<Vec<_>>>() {
        Some(d) if d.is_empty() => Some(0),
        Some(d) if d.len() == 1 => Some(d[0] * 10),
        Some(d) if d.len() == 2 => Some(d[0] * 10 + d[1]),
        _ => None,
    };
    let fraction = fraction.ok_or_else(|| format!("`{text}`: at most two decimal digits"))?;
    let units: u64 = units.parse().map_err(|e| format!("`{text}`: {e}"))?;
    Ok(units * 100 + fraction)
}

#[pipeline]
fn prices(text: Source<String>, parsed: Sink<u64>) {
    text.map(cents).to(parsed);
}

/// Parses prices; the ones that do not parse become dead letters, shown with their values.
#[derive(Parser)]
struct Args {
    /// The backend: `mem://` (the embedded broker), `redis://HOST:PORT` or
    /// `kafka://HOST:PORT`.
    #[arg(default_value = "mem://")]
    url: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Args { url } = Args::parse();
    let connection = Connection::open(&url).await?;
    // A fresh run id, so that reruns against a server do not read the previous run's topics.
    let run = format!(
        "run{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let (text, parsed) = (format!("{run}.text"), format!("{run}.parsed"));
    let running = Prices::builder()
        .text(TopicSpec::new(&text))
        .parsed(TopicSpec::new(&parsed))
        .options(PipelineOptions::new().connection(&connection).group(&run))
        .start()
        .await?;

    let input = ["12.50", "twelve", "3.5", "4.x"].map(str::to_owned);
    connection
        .producer::<String>(text.as_str())
        .await?
        .send_batch(0, input)
        .await?;

    // The good records come out; the pipeline goes on past the bad ones.
    let mut reader = connection
        .reader::<u64>(parsed.as_str(), &format!("{run}.reader"))
        .await?;
    let mut good = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while good.len() < 2 {
        anyhow::ensure!(Instant::now() < deadline, "the output never arrived");
        for record in reader.recv_batch(16, Duration::from_millis(200)).await? {
            good.push(record.value?);
        }
        reader.commit().await?;
    }
    println!("on {}: parsed {good:?}", connection.scheme());
    anyhow::ensure!(good == [1250, 350], "wrong prices: {good:?}");

    // This process's dead letters, values included.
    let mut mine = running.dead_letters().consumer(Start::Earliest)?;
    for _ in 0..2 {
        let record = mine.recv().await?;
        let letter = record.value();
        println!(
            "  dead letter: {letter} (value {:?})",
            letter.value::<String>()
        );
    }
    let kept = running.dead_letter_topic().map(str::to_owned);
    println!("{}", running.shutdown().await?);

    // On a remote backend, the kept copies outlive the process.
    if let Some(topic) = kept {
        let triage = Connection::open(&url).await?;
        let spec = TopicSpec::new(&topic).json();
        let mut letters = triage
            .reader::<StoredDeadLetter>(spec, &format!("{run}.triage"))
            .await?;
        let mut seen = 0;
        while seen < 2 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the kept dead letters never arrived"
            );
            for record in letters.recv_batch(16, Duration::from_millis(200)).await? {
                let letter = record.value?;
                let value = letter.decode::<String>().transpose()?;
                println!("  kept in `{topic}`: {letter} (value {value:?})");
                seen += 1;
            }
            letters.commit().await?;
        }
    }
    Ok(())
}
