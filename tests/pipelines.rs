//! Pipelines end to end on the embedded broker, from a user's side: results, order per key,
//! dead letters (R8), clean stop and restart (R12), backpressure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use dataflow::broker::{Broker, Overflow, Start, Topic, TopicConfig};
use dataflow::{DeadLetter, PipelineOptions, Sink, Source, pipeline, stage};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Reads `n` records from `topic` (all partitions), waiting at most 20 s in all.
async fn read_n<T: Clone + Send + Sync + 'static>(topic: &Topic<T>, n: usize) -> Vec<T> {
    let mut reader = topic.consumer(Start::Earliest).unwrap();
    let mut out = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        match tokio::time::timeout_at(deadline, reader.recv()).await {
            Ok(Ok(record)) => out.push(record.value().clone()),
            Ok(Err(err)) => panic!("read failed: {err}"),
            Err(_) => panic!("timed out after {} of {n} records", out.len()),
        }
    }
    out
}

fn words(line: String) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[pipeline]
fn word_count(lines: Source<String>, counts: Sink<(String, u64)>) {
    lines
        .flat_map(words)
        .key_by(|w| w.clone())
        .count()
        .to(counts);
}

#[test]
fn word_count_counts_every_word_across_partitions() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let lines = broker.topic::<String>("lines", TopicConfig::new().partitions(3))?;
        let counts = broker.topic::<(String, u64)>("counts", TopicConfig::new().partitions(2))?;
        let running = WordCount::builder()
            .lines(lines.clone())
            .counts(counts.clone())
            .start()
            .await?;
        let producer = lines.producer();
        for i in 0..300 {
            producer.send(format!("a b{} c", i % 3)).await?;
        }
        let updates = read_n(&counts, 900).await;
        let mut last: HashMap<String, u64> = HashMap::new();
        for (word, count) in updates {
            let previous = last.insert(word.clone(), count).unwrap_or(0);
            assert!(count > previous, "running counts only grow for {word}");
        }
        assert_eq!(last["a"], 300);
        assert_eq!(last["c"], 300);
        assert_eq!(last["b0"] + last["b1"] + last["b2"], 300);
        let metrics = running.shutdown().await?;
        assert_eq!(metrics.stage("words").unwrap().count, 300);
        assert_eq!(metrics.stage("counts").unwrap().count, 900);
        Ok(())
    })
}

#[pipeline]
fn by_key(events: Source<(u32, u64)>, out: Sink<(u32, (u32, u64))>) {
    events.key_by(|e| e.0).to(out);
}

#[test]
fn order_per_key_is_kept_through_a_repartition() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let events = broker.topic::<(u32, u64)>("events", TopicConfig::new().partitions(4))?;
        let out = broker.topic::<(u32, (u32, u64))>("out", TopicConfig::new().partitions(3))?;
        let running = ByKey::builder()
            .events(events.clone())
            .out(out.clone())
            .start()
            .await?;
        let producer = events.producer();
        const KEYS: u32 = 16;
        const PER_KEY: u64 = 500;
        for seq in 0..PER_KEY {
            for key in 0..KEYS {
                // Each key's events go to one source partition, so they have an order.
                producer.send_to(key % 4, (key, seq)).await?;
            }
        }
        let all = read_n(&out, (KEYS as u64 * PER_KEY) as usize).await;
        let mut next: BTreeMap<u32, u64> = BTreeMap::new();
        for (key, (k, seq)) in all {
            assert_eq!(key, k);
            let expected = next.entry(key).or_insert(0);
            assert_eq!(seq, *expected, "key {key} out of order");
            *expected += 1;
        }
        assert!(next.values().all(|&n| n == PER_KEY));
        running.shutdown().await?;
        Ok(())
    })
}

#[derive(Debug)]
struct BadRecord(String);

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad record: {}", self.0)
    }
}

/// A payload is 8 little-endian bytes; anything else is malformed.
#[stage]
fn decode(bytes: Vec<u8>) -> std::result::Result<u64, BadRecord> {
    let array: [u8; 8] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| BadRecord(format!("{} bytes", bytes.len())))?;
    Ok(u64::from_le_bytes(array))
}

/// Panics on multiples of 1000 (a bug in a stage).
#[stage]
fn fragile(x: u64) -> u64 {
    assert!(!x.is_multiple_of(1_000) || x == 0, "cannot handle {x}");
    x
}

#[pipeline]
fn decoded(raw: Source<Vec<u8>>, out: Sink<u64>) {
    raw.map(decode).map(fragile).to(out);
}

/// R8, scaled for CI: 1% malformed payloads (random bytes, truncation, a length prefix
/// claiming 4 GiB) and a stage that panics on 0.1%: the pipeline stays up, each bad record is
/// in the dead-letter output once with its stage, error and position, every good record is
/// processed.
#[test]
fn r8_bad_records_go_to_dead_letters_once_and_the_rest_is_processed() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let raw = broker.topic::<Vec<u8>>("raw", TopicConfig::new().partitions(2))?;
        let out = broker.topic::<u64>("out", TopicConfig::new().partitions(2))?;
        let dead = broker.topic::<DeadLetter>("dead", TopicConfig::new())?;
        let running = Decoded::builder()
            .raw(raw.clone())
            .out(out.clone())
            .options(PipelineOptions::new().dead_letters(dead.clone()))
            .start()
            .await?;
        let producer = raw.producer();
        let mut malformed = HashSet::new();
        let mut panicking = HashSet::new();
        let mut good = HashSet::new();
        const N: u64 = 20_000;
        for i in 1..=N {
            let payload = match i % 100 {
                17 => vec![0xde, 0xad],                                 // truncated
                42 if i % 200 == 42 => u32::MAX.to_be_bytes().to_vec(), // "4 GiB" length prefix
                42 => (0..13).map(|b| (b * 31 + i) as u8).collect(),    // random bytes
                _ => i.to_le_bytes().to_vec(),
            };
            let at = producer.send(payload.clone()).await?;
            if payload.len() != 8 {
                malformed.insert(at);
            } else if i % 1_000 == 0 {
                panicking.insert(at);
            } else {
                good.insert(i);
            }
        }
        let processed: HashSet<u64> = read_n(&out, good.len()).await.into_iter().collect();
        assert_eq!(processed, good, "every good record is processed");
        let letters = read_n(&dead, malformed.len() + panicking.len()).await;
        let mut seen = HashSet::new();
        for letter in &letters {
            assert!(
                seen.insert(letter.position),
                "a dead letter appears once: {letter}"
            );
            assert_eq!(letter.pipeline, "decoded");
            assert_eq!(letter.topic, "raw");
            if malformed.contains(&letter.position) {
                assert_eq!(letter.stage, "decode");
                assert!(!letter.panicked);
                assert!(letter.error.starts_with("bad record"), "{}", letter.error);
            } else {
                assert!(
                    panicking.contains(&letter.position),
                    "unexpected dead letter {letter}"
                );
                assert_eq!(letter.stage, "fragile");
                assert!(letter.panicked);
                assert!(letter.error.contains("cannot handle"), "{}", letter.error);
            }
            assert!(
                letter.value::<Vec<u8>>().is_some(),
                "the input value is kept for replay"
            );
        }
        let metrics = running.shutdown().await?;
        assert_eq!(
            metrics.stage("decode").unwrap().failed,
            malformed.len() as u64
        );
        assert_eq!(
            metrics.stage("fragile").unwrap().failed,
            panicking.len() as u64
        );
        Ok(())
    })
}

#[pipeline]
fn tagged(input: Source<u64>, out: Sink<(u64, u64)>) {
    input.key_by(|x| x % 7).to(out);
}

/// R12, scaled for CI: a shutdown with records in flight, then a restart with the same group
/// prefix: exits cleanly, and over both runs every record reaches the sink exactly once.
#[test]
fn r12_clean_stop_and_restart_lose_and_duplicate_nothing() -> Result {
    let rt = runtime();
    let broker = Broker::new();
    let input = broker.topic::<u64>("input", TopicConfig::new().partitions(2))?;
    let out = broker.topic::<(u64, u64)>("out", TopicConfig::new().partitions(2))?;
    const N: u64 = 30_000;
    let options = PipelineOptions::new()
        .broker(&broker)
        .group("r12")
        .batch(64);
    rt.block_on(async {
        let running = Tagged::builder()
            .input(input.clone())
            .out(out.clone())
            .options(options.clone())
            .start()
            .await?;
        let producer = input.producer();
        for i in 0..N / 2 {
            producer.send(i).await?;
        }
        // Stop while records are still flowing in.
        let feeder = {
            let producer = producer.clone();
            tokio::spawn(async move {
                for i in N / 2..N {
                    producer.send(i).await.unwrap();
                    if i % 1_000 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        // Stop at once: most of the input is still unread, and more keeps arriving.
        let first = running.shutdown().await?;
        feeder.await?;
        let after_first = out.end_offsets().iter().sum::<u64>();
        assert!(
            after_first < N,
            "the stop came mid-stream ({after_first} of {N} written)"
        );
        assert!(first.stage("out").unwrap().count == after_first);

        let running = Tagged::builder()
            .input(input.clone())
            .out(out.clone())
            .options(options.clone())
            .start()
            .await?;
        let all = read_n(&out, N as usize).await;
        let metrics = running.shutdown().await?;
        let distinct: HashSet<u64> = all.iter().map(|(_, v)| *v).collect();
        assert_eq!(distinct.len() as u64, N, "0 lost");
        assert_eq!(out.end_offsets().iter().sum::<u64>(), N, "0 duplicated");
        assert_eq!(metrics.stage("out").unwrap().count, N - after_first);
        Ok(())
    })
}

#[pipeline]
fn passthrough(input: Source<u64>, out: Sink<u64>) {
    input.map(|x| x + 1).to(out);
}

/// A slow sink slows the source: with a bounded sink topic and nobody reading it, the
/// pipeline stops reading its input instead of buffering it.
#[test]
fn backpressure_from_a_full_sink_reaches_the_source() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let input = broker.topic::<u64>("input", TopicConfig::new())?;
        let out =
            broker.topic::<u64>("out", TopicConfig::new().capacity(1_000, Overflow::Block))?;
        // A group that must not lose records, and does not read yet.
        let slow = out.group("slow-reader")?;
        let running = Passthrough::builder()
            .input(input.clone())
            .out(out.clone())
            .options(PipelineOptions::new().batch(100))
            .start()
            .await?;
        let producer = input.producer();
        for i in 0..20_000 {
            producer.send(i).await?;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let written = out.end_offsets()[0];
        assert!(
            written <= 1_000,
            "the sink holds at most its capacity: {written}"
        );
        let processed = running.metrics().stage("map_2").unwrap().count;
        assert!(
            processed <= 1_000 + 100,
            "the pipeline stopped reading: {processed} of 20000 processed"
        );
        // Now the reader catches up and everything flows.
        let mut member = slow.join();
        for expected in 1..=20_000u64 {
            let record = tokio::time::timeout(Duration::from_secs(20), member.recv()).await??;
            assert_eq!(*record.value(), expected);
            record.commit()?;
        }
        running.shutdown().await?;
        Ok(())
    })
}

fn double(x: u64) -> u64 {
    x * 2
}

fn square(x: u64) -> u64 {
    x * x
}

#[pipeline]
fn fan(input: Source<u64>, merged: Sink<u64>, doubled: Sink<u64>) {
    let numbers = input.filter(|x| *x > 0);
    numbers.map(double).to(doubled);
    let squares = numbers.map(square);
    let (small, big) = squares.split(|x| *x < 100);
    small.merge(big).to(merged);
}

#[test]
fn fan_out_and_fan_in_deliver_every_record_to_every_branch() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let input = broker.topic::<u64>("input", TopicConfig::new().partitions(2))?;
        let merged = broker.topic::<u64>("merged", TopicConfig::new())?;
        let doubled = broker.topic::<u64>("doubled", TopicConfig::new())?;
        let running = Fan::builder()
            .input(input.clone())
            .merged(merged.clone())
            .doubled(doubled.clone())
            .start()
            .await?;
        let producer = input.producer();
        for i in 0..=1_000 {
            producer.send(i).await?;
        }
        let mut squares = read_n(&merged, 1_000).await;
        squares.sort_unstable();
        assert_eq!(squares, (1..=1_000).map(|x| x * x).collect::<Vec<_>>());
        let mut doubles = read_n(&doubled, 1_000).await;
        doubles.sort_unstable();
        assert_eq!(doubles, (1..=1_000).map(|x| x * 2).collect::<Vec<_>>());
        let metrics = running.shutdown().await?;
        let table = metrics.to_string();
        for stage in ["double", "square", "split_", "merge_"] {
            assert!(table.contains(stage), "{stage} missing from\n{table}");
        }
        let mermaid = Fan::graph().to_mermaid();
        assert!(
            mermaid.contains("-. topic .->"),
            "the merge crosses a topic:\n{mermaid}"
        );
        Ok(())
    })
}

#[test]
fn starting_outside_a_runtime_is_a_clear_error() {
    let broker = Broker::new();
    let start = Passthrough::builder()
        .input(broker.topic("i", TopicConfig::new()).unwrap())
        .out(broker.topic("o", TopicConfig::new()).unwrap())
        .start();
    // Polled by a plain executor: no tokio runtime around it.
    let err = futures_util::FutureExt::now_or_never(start)
        .expect("fails at once")
        .unwrap_err();
    assert!(matches!(err, dataflow::StartError::NoRuntime));
}

/// An async stage: waits a little, fails on multiples of 97.
async fn enrich(x: u64) -> std::result::Result<u64, String> {
    tokio::time::sleep(Duration::from_micros((x * 7919) % 300)).await;
    if x.is_multiple_of(97) {
        Err(format!("no data for {x}"))
    } else {
        Ok(x * 10)
    }
}

#[pipeline]
fn enriched(input: Source<u64>, ordered: Sink<u64>, any_order: Sink<u64>) {
    input.map_async(enrich, 8).to(ordered);
    input
        .map_async_unordered(|x: u64| async move { x + 1 }, 4)
        .to(any_order);
}

#[test]
fn async_stages_keep_input_order_unless_asked_not_to() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let input = broker.topic::<u64>("input", TopicConfig::new())?;
        let ordered = broker.topic::<u64>("ordered", TopicConfig::new())?;
        let any_order = broker.topic::<u64>("any", TopicConfig::new())?;
        let running = Enriched::builder()
            .input(input.clone())
            .ordered(ordered.clone())
            .any_order(any_order.clone())
            .start()
            .await?;
        let producer = input.producer();
        const N: u64 = 2_000;
        for i in 1..=N {
            producer.send(i).await?;
        }
        let expected: Vec<u64> = (1..=N).filter(|x| x % 97 != 0).map(|x| x * 10).collect();
        assert_eq!(
            read_n(&ordered, expected.len()).await,
            expected,
            "input order is kept"
        );
        let mut plus_one = read_n(&any_order, N as usize).await;
        plus_one.sort_unstable();
        assert_eq!(plus_one, (2..=N + 1).collect::<Vec<_>>());
        let dead = read_n(&running.dead_letters(), (N / 97) as usize).await;
        assert!(
            dead.iter()
                .all(|d| d.stage == "enrich" && d.error.starts_with("no data"))
        );
        let metrics = running.shutdown().await?;
        assert_eq!(metrics.stage("enrich").unwrap().count, N);
        assert_eq!(metrics.stage("enrich").unwrap().failed, N / 97);
        Ok(())
    })
}

/// A backlog larger than an internal topic's capacity, waiting before the pipeline starts:
/// every record reaches the sink (the downstream group exists before any task reads).
#[test]
fn a_backlog_waiting_at_start_crosses_a_repartition_whole() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let input = broker.topic::<u64>("input", TopicConfig::new())?;
        let out = broker.topic::<(u64, u64)>("out", TopicConfig::new())?;
        const N: u64 = 20_000;
        input
            .producer()
            .send_batch(0, (0..N).collect::<Vec<_>>())
            .await?;
        let running = Tagged::builder()
            .input(input.clone())
            .out(out.clone())
            .options(PipelineOptions::new().internal_capacity(500))
            .start()
            .await?;
        let all = read_n(&out, N as usize).await;
        let distinct: HashSet<u64> = all.iter().map(|(_, v)| *v).collect();
        assert_eq!(
            distinct.len() as u64,
            N,
            "nothing dropped by the internal topic"
        );
        let metrics = running.shutdown().await?;
        assert_eq!(metrics.lagged, 0);
        Ok(())
    })
}

/// A sink closed under a running pipeline: the pipeline fails cleanly (the error comes back
/// from `shutdown`) instead of waiting forever behind a full internal topic.
#[test]
fn a_sink_closed_under_the_pipeline_fails_it_without_hanging() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let input = broker.topic::<u64>("input", TopicConfig::new())?;
        let out = broker.topic::<(u64, u64)>("out", TopicConfig::new())?;
        let running = Tagged::builder()
            .input(input.clone())
            .out(out.clone())
            .options(PipelineOptions::new().internal_capacity(100).batch(10))
            .start()
            .await?;
        out.close();
        input
            .producer()
            .send_batch(0, (0..10_000u64).collect::<Vec<_>>())
            .await?;
        // Wait until records flow: then the downstream task meets the closed sink, whether it
        // is still running or draining at shutdown.
        for _ in 0..2_000 {
            if running.metrics().stage("key_by_2").unwrap().count > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let result = tokio::time::timeout(Duration::from_secs(20), running.shutdown())
            .await
            .expect("shutdown must not hang");
        match result {
            Err(dataflow::PipelineError::OutputClosed { topic }) => {
                assert!(topic == "out" || topic.starts_with("__"))
            }
            other => panic!("expected an output-closed error, got {other:?}"),
        }
        Ok(())
    })
}

#[derive(serde::Deserialize, Clone, Debug, PartialEq)]
struct Reading {
    sensor: u32,
    value: f64,
}

#[pipeline]
fn readings(raw: Source<Vec<u8>>, values: Sink<u32>) {
    raw.map(dataflow::codec::json::<Reading>)
        .map(|r: Reading| r.sensor)
        .to(values);
}

/// Payloads from another tool, some malformed: the good ones decode, each bad one is a dead
/// letter with the codec's error, and the pipeline stays up.
#[test]
fn json_payloads_that_do_not_decode_are_dead_letters() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let raw = broker.topic::<Vec<u8>>("raw", TopicConfig::new())?;
        let values = broker.topic::<u32>("values", TopicConfig::new())?;
        let running = Readings::builder()
            .raw(raw.clone())
            .values(values.clone())
            .start()
            .await?;
        let producer = raw.producer();
        let payloads: [&[u8]; 5] = [
            br#"{"sensor":1,"value":2.5}"#,
            br#"{"sensor":2"#,
            b"\xff\xfe garbage",
            br#"{"sensor":3,"value":1.0} trailing"#,
            br#"{"sensor":4,"value":-1.0}"#,
        ];
        for payload in payloads {
            producer.send(payload.to_vec()).await?;
        }
        assert_eq!(read_n(&values, 2).await, vec![1, 4]);
        let dead = read_n(&running.dead_letters(), 3).await;
        assert!(
            dead.iter()
                .all(|d| d.stage == "json" && d.error.starts_with("cannot decode"))
        );
        assert_eq!(
            dead.iter().map(|d| d.position.offset).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        running.shutdown().await?;
        Ok(())
    })
}

/// Sleeps a known 3 ms, before a repartition.
fn slow(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(3));
    x
}

#[pipeline]
fn slow_then_keyed(input: Source<u64>, out: Sink<(u64, u64)>) {
    input.map(slow).key_by(|x: &u64| x % 3).to(out);
}

/// End-to-end latency at a sink is measured from the source record's append, carried through
/// the internal topic of the repartition: it includes the 3 ms spent before it.
#[test]
fn end_to_end_latency_counts_from_the_source_record_across_a_repartition() -> Result {
    runtime().block_on(async {
        let broker = Broker::new();
        let input = broker.topic::<u64>("input", TopicConfig::new())?;
        let out = broker.topic::<(u64, u64)>("out", TopicConfig::new())?;
        let running = SlowThenKeyed::builder()
            .input(input.clone())
            .out(out.clone())
            .options(PipelineOptions::new().sample_every(1))
            .start()
            .await?;
        input
            .producer()
            .send_batch(0, (0..20u64).collect::<Vec<_>>())
            .await?;
        read_n(&out, 20).await;
        let metrics = running.shutdown().await?;
        let stage = metrics.stage("slow").expect("the stage's row");
        assert!(stage.p50_nanos.expect("timed") >= 3_000_000, "{metrics}");
        let sink = metrics.stage("out").expect("the sink's row");
        assert!(
            sink.p50_nanos.expect("timed") >= 3_000_000,
            "end to end from the source append: {metrics}"
        );
        Ok(())
    })
}
