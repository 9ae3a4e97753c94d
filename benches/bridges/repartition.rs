//! The repartition row: a pipeline whose `key_by` repartitions its records over 4 partitions
//! (two segments joined by an internal topic) against the same pipeline without the `key_by`
//! (one segment), on Redis and on Kafka. `BENCHMARKS.md`'s target: keyed within 4x of unkeyed
//! on Kafka (it was 27-110x, issue 15 item 7).
//!
//! A run starts the pipeline and a reader of its output (a group of its own), sends one record
//! to each input partition and reads them back, so that every group has joined (seconds on
//! tansu) before the clock starts; then a producer task sends the records in batches of 1 000
//! (each to one input partition, in turn) while the reader reads them. The clock runs from the
//! first send to the last record out. Every value must come out (duplicates, which a
//! rebalance could make, are counted once).

use std::time::{Duration, Instant};

use dataflow::backend::Connection;
use dataflow::{PipelineOptions, Sink, Source, TopicSpec, pipeline};

use crate::common::stats::spread;

/// Partitions of the input, the internal topic and the output.
const PARTITIONS: u32 = 4;

#[pipeline]
fn keyed(input: Source<u64>, output: Sink<u64>) {
    input
        .key_by(|x: &u64| *x)
        .map(|(_, x): (u64, u64)| x)
        .to(output);
}

#[pipeline]
fn unkeyed(input: Source<u64>, output: Sink<u64>) {
    input.map(|x: u64| x).to(output);
}

/// The two shapes compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// `key_by` over 4 partitions, then a `map`: two segments.
    Keyed,
    /// A `map`: one segment.
    Unkeyed,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Shape::Keyed => "key_by over 4 partitions",
            Shape::Unkeyed => "no key_by",
        }
    }
}

/// One run of one shape on one backend.
pub struct ShapeRun {
    /// `redis` or `kafka`.
    pub backend: &'static str,
    pub shape: Shape,
    /// Records sent (and read back) on the clock.
    pub records: u64,
    /// From the first send to the last record out.
    pub seconds: f64,
}

impl ShapeRun {
    /// Records per second, end to end.
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

/// Runs `shape` on the backend `url` over `n` records, in topics and groups named after `tag`.
pub async fn shape_run(
    backend: &'static str,
    url: &str,
    shape: Shape,
    tag: &str,
    n: u64,
) -> ShapeRun {
    let connection = Connection::open(url).await.expect("connection");
    let input = TopicSpec::new(format!("{tag}-in")).partitions(PARTITIONS);
    let output = TopicSpec::new(format!("{tag}-out")).partitions(PARTITIONS);
    let mut producer = connection
        .producer::<u64>(input.clone())
        .await
        .expect("producer");
    let mut reader = connection
        .reader::<u64>(output.clone(), &format!("{tag}-reader"))
        .await
        .expect("reader");
    let options = PipelineOptions::new()
        .connection(&connection)
        .group(&format!("{tag}-pipeline"));
    let running = match shape {
        Shape::Keyed => {
            Keyed::builder()
                .input(input)
                .output(output)
                .options(options)
                .start()
                .await
        }
        Shape::Unkeyed => {
            Unkeyed::builder()
                .input(input)
                .output(output)
                .options(options)
                .start()
                .await
        }
    }
    .expect("the pipeline starts");
    // Primes: one record per input partition (values from `n` on), read back before the
    // clock starts, so that every group has joined.
    for partition in 0..PARTITIONS {
        let prime = n + u64::from(partition);
        producer
            .send_batch(partition, [prime])
            .await
            .expect("prime");
    }
    let mut seen = vec![false; (n + u64::from(PARTITIONS)) as usize];
    read_distinct(
        &mut reader,
        &mut seen,
        u64::from(PARTITIONS),
        backend,
        shape,
    )
    .await;
    let started = Instant::now();
    let produce = tokio::spawn(async move {
        const CHUNK: u64 = 1_000;
        for start in (0..n).step_by(CHUNK as usize) {
            let partition = (start / CHUNK) as u32 % PARTITIONS;
            producer
                .send_batch(partition, start..(start + CHUNK).min(n))
                .await
                .expect("send_batch");
        }
    });
    read_distinct(&mut reader, &mut seen, n, backend, shape).await;
    let seconds = started.elapsed().as_secs_f64();
    produce.await.expect("the producer");
    reader.leave().await.expect("leave");
    running.shutdown().await.expect("shutdown");
    ShapeRun {
        backend,
        shape,
        records: n,
        seconds,
    }
}

/// Reads `reader` (committing each batch) until `count` values not seen before came out.
async fn read_distinct(
    reader: &mut dataflow::backend::TopicReader<u64>,
    seen: &mut [bool],
    count: u64,
    backend: &str,
    shape: Shape,
) {
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut distinct = 0;
    while distinct < count {
        assert!(
            Instant::now() < deadline,
            "{backend} {shape:?}: {distinct} of {count} records came out"
        );
        for record in reader
            .recv_batch(4096, Duration::from_millis(200))
            .await
            .expect("recv_batch")
        {
            let value = record.value.expect("a u64") as usize;
            if !std::mem::replace(&mut seen[value], true) {
                distinct += 1;
            }
        }
        reader.commit().await.expect("commit");
    }
}

/// The heading of the repartition runs' table.
pub fn heading(n: u64) {
    println!(
        "\n## Repartition: {n} records through a pipeline with and without a key_by over \
         {PARTITIONS} partitions, from the first send to the last record out\n"
    );
    println!("| round | backend | shape | records | s | records/s |");
    println!("|---:|---|---|---:|---:|---:|");
}

/// One run's row.
pub fn row(round: usize, run: &ShapeRun) {
    println!(
        "| {round} | {} | {} | {} | {:.3} | {:.0} |",
        run.backend,
        run.shape.label(),
        run.records,
        run.seconds,
        run.rate()
    );
}

/// Medians over rounds, and the same-round ratio unkeyed / keyed on each backend with the
/// target on Kafka.
pub fn summarize(runs: &[ShapeRun]) {
    println!("\n### Repartition: median [min, max] over rounds\n");
    for backend in ["redis", "kafka"] {
        let rates = |shape: Shape| -> Vec<f64> {
            runs.iter()
                .filter(|r| r.backend == backend && r.shape == shape)
                .map(ShapeRun::rate)
                .collect()
        };
        let (keyed, unkeyed) = (rates(Shape::Keyed), rates(Shape::Unkeyed));
        if keyed.is_empty() {
            continue;
        }
        let slower: Vec<f64> = unkeyed.iter().zip(&keyed).map(|(u, k)| u / k).collect();
        let int = |v: f64| format!("{v:.0}");
        println!(
            "- {backend}: no key_by {} records/s, key_by {} records/s; no key_by / key_by \
             (same round): {}{}",
            spread(&unkeyed, int),
            spread(&keyed, int),
            spread(&slower, |v| format!("{v:.2}x")),
            if backend == "kafka" {
                let median = crate::common::stats::median(&slower);
                let verdict = if median <= 4.0 { "met" } else { "MISSED" };
                format!(" (target: within 4x: {verdict})")
            } else {
                String::new()
            }
        );
    }
}
