//! The same pipeline on every backend (`mem://`, `file://`, `stdio://` through a child
//! process's pipes, `redis://`, `kafka://`), compared record for record; and what the log
//! interface promises everywhere: dead letters kept on the backend, a stream that ends.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dataflow::backend::Connection;
use dataflow::{PipelineOptions, Sink, Source, StoredDeadLetter, TopicSpec, pipeline};
use support::kafka::Tansu;
use support::pipelines::{Result, WordCount, runtime};
use support::redis::RedisServer;

const TEXT: [&str; 5] = [
    "the quick brown fox",
    "jumps over the lazy dog",
    "the dog sleeps",
    "quick quick fox",
    "a fox is a fox",
];

/// Every `(word, running count)` update word count emits for [`TEXT`], in a canonical order:
/// the updates of one word are 1, 2, 3 ... whatever the partitioning.
fn expected_updates() -> Vec<(String, u64)> {
    let mut counts = BTreeMap::<String, u64>::new();
    let mut updates = Vec::new();
    for word in TEXT.iter().flat_map(|line| line.split_whitespace()) {
        let count = counts.entry(word.to_lowercase()).or_default();
        *count += 1;
        updates.push((word.to_lowercase(), *count));
    }
    updates.sort();
    updates
}

/// A name no earlier run used (Kafka and Redis keep topics between tests).
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{name}-{nanos}")
}

/// Runs word count on `url`, feeding [`TEXT`] and reading the sink through a `Connection`;
/// returns the updates in canonical order.
async fn word_count_on(url: &str) -> Result<Vec<(String, u64)>> {
    let connection = Connection::open(url).await?;
    let run = unique("wc");
    let (lines, counts) = (format!("{run}.lines"), format!("{run}.counts"));
    let mut producer = connection
        .producer::<String>(TopicSpec::new(&lines).partitions(2))
        .await?;
    let running = WordCount::builder()
        .lines(lines.as_str())
        .counts(TopicSpec::new(&counts).partitions(2))
        .options(PipelineOptions::new().connection(&connection).group(&run))
        .start()
        .await?;
    for (i, line) in TEXT.iter().enumerate() {
        producer
            .send_batch(i as u32 % 2, [(*line).to_owned()])
            .await?;
    }
    let total = expected_updates().len();
    let mut reader = connection
        .reader::<(String, u64)>(counts.as_str(), &format!("{run}.reader"))
        .await?;
    let mut updates = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while updates.len() < total {
        assert!(Instant::now() < deadline, "{url}: only {updates:?} arrived");
        for record in reader.recv_batch(256, Duration::from_millis(200)).await? {
            updates.push(record.value.map_err(|e| e.error)?);
        }
    }
    reader.commit().await?;
    running.shutdown().await?;
    updates.sort();
    Ok(updates)
}

/// Carries the role to a child process of the stdio test.
const STDIO_CHILD_ENV: &str = "DATAFLOW_STDIO_CHILD";

/// The child role of the stdio tests: word count on `stdio://` until standard input ends,
/// then the metrics on standard error. Only a child process runs it.
#[test]
fn stdio_child() -> Result {
    if std::env::var(STDIO_CHILD_ENV).is_err() {
        return Ok(());
    }
    runtime().block_on(async {
        let running = WordCount::builder()
            .lines("lines")
            .counts("counts")
            .options(PipelineOptions::new().backend("stdio://"))
            .start()
            .await?;
        let metrics = running.until_end().await?;
        eprintln!("{metrics}");
        Ok(())
    })
}

/// What a run of word count on `stdio://` in a child process printed.
struct StdioRun {
    /// Standard output, line by line.
    stdout: Vec<String>,
    /// Standard error, line by line.
    stderr: Vec<String>,
    success: bool,
}

/// Runs word count on `stdio://` in a child process fed `input` (whole lines) and waits for it
/// to exit on the end of its input.
fn word_count_through_pipes(input: &[String]) -> StdioRun {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "stdio_child", "--nocapture", "--quiet"])
        .env(STDIO_CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("a child process");
    let mut stdin = child.stdin.take().expect("piped");
    for line in input {
        writeln!(stdin, "{line}").expect("the child reads its input");
    }
    drop(stdin); // the end of the input
    let output = child.wait_with_output().expect("the child exits");
    let lines = |bytes: &[u8]| bytes.lines().map(|l| l.expect("utf-8")).collect();
    StdioRun {
        stdout: lines(&output.stdout),
        stderr: lines(&output.stderr),
        success: output.status.success(),
    }
}

/// The lines of TEXT as a JSON producer writes them.
fn json_lines() -> Vec<String> {
    TEXT.iter()
        .map(|line| serde_json::to_string(line).expect("a string encodes"))
        .collect()
}

/// The records a child printed: its lines that are `(word, count)` JSON (the test harness
/// prints its own lines too).
fn printed_updates(stdout: &[String]) -> Vec<(String, u64)> {
    let mut updates: Vec<(String, u64)> = stdout
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    updates.sort();
    updates
}

#[test]
fn the_same_pipeline_gives_the_same_output_on_every_backend() -> Result {
    let expected = expected_updates();
    let rt = runtime();

    assert_eq!(rt.block_on(word_count_on("mem://"))?, expected, "mem://");

    let dir = std::env::temp_dir().join(unique("dataflow-file-backend"));
    let url = format!("file://{}", dir.display());
    assert_eq!(rt.block_on(word_count_on(&url))?, expected, "file://");
    std::fs::remove_dir_all(&dir)?;

    let run = word_count_through_pipes(&json_lines());
    assert!(run.success, "the stdio child failed: {:?}", run.stderr);
    assert_eq!(printed_updates(&run.stdout), expected, "stdio://");

    if let Some(server) = RedisServer::start() {
        assert_eq!(
            rt.block_on(word_count_on(&server.url()))?,
            expected,
            "redis://"
        );
    }
    if let Some(tansu) = Tansu::start() {
        assert_eq!(
            rt.block_on(word_count_on(&tansu.url()))?,
            expected,
            "kafka://"
        );
    }
    Ok(())
}

#[test]
fn on_stdio_a_malformed_line_is_a_dead_letter_on_stderr_and_the_run_exits_cleanly() {
    let mut input = json_lines();
    input.insert(2, "{not json".to_owned());
    let run = word_count_through_pipes(&input);
    assert!(run.success, "the stdio child failed: {:?}", run.stderr);
    assert_eq!(printed_updates(&run.stdout), expected_updates());
    let letters: Vec<StoredDeadLetter> = run
        .stderr
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert_eq!(letters.len(), 1, "{:?}", run.stderr);
    assert_eq!(letters[0].stage, "decode");
    assert_eq!(letters[0].offset, 2, "the third line");
    // The metrics table went to standard error too, after the end of the input.
    assert!(
        run.stderr
            .iter()
            .any(|l| l.contains("pipeline `word_count`")),
        "{:?}",
        run.stderr
    );
}

/// Fails on 13.
fn unlucky(x: u64) -> std::result::Result<u64, &'static str> {
    if x == 13 { Err("unlucky") } else { Ok(x) }
}

#[pipeline]
fn lucky(input: Source<u64>, output: Sink<u64>) {
    input.map(unlucky).to(output);
}

/// On every backend, a stage's failure is a dead letter kept on the backend (before its input
/// is committed), carrying the input value.
#[test]
fn a_dead_letter_is_kept_on_every_backend_with_its_input() -> Result {
    let redis = RedisServer::start();
    let tansu = Tansu::start();
    let dir = std::env::temp_dir().join(unique("dataflow-dead-letters"));
    let mut urls = vec!["mem://".to_owned(), format!("file://{}", dir.display())];
    urls.extend(redis.as_ref().map(RedisServer::url));
    urls.extend(tansu.as_ref().map(Tansu::url));
    let rt = runtime();
    for url in urls {
        rt.block_on(async {
            let connection = Connection::open(&url).await?;
            let run = unique("unlucky");
            let input = format!("{run}.in");
            let running = Lucky::builder()
                .input(input.as_str())
                .output(format!("{run}.out"))
                .options(PipelineOptions::new().connection(&connection).group(&run))
                .start()
                .await?;
            let kept = running
                .dead_letter_topic()
                .expect("every backend keeps dead letters")
                .to_owned();
            assert_eq!(kept, format!("{run}.dead-letters"));
            let mut producer = connection.producer::<u64>(input.as_str()).await?;
            producer.send_batch(0, [12, 13, 14]).await?;
            let spec = TopicSpec::new(&kept).json();
            let mut reader = connection
                .reader::<StoredDeadLetter>(spec, &format!("{run}.triage"))
                .await?;
            let deadline = Instant::now() + Duration::from_secs(60);
            let letter = loop {
                assert!(Instant::now() < deadline, "{url}: no dead letter");
                if let Some(record) = reader
                    .recv_batch(1, Duration::from_millis(200))
                    .await?
                    .pop()
                {
                    break record.value.map_err(|e| e.error)?;
                }
            };
            assert_eq!(letter.stage, "unlucky", "{url}");
            assert_eq!(letter.topic, input, "{url}");
            assert_eq!(letter.decode::<u64>().transpose()?, Some(13), "{url}");
            running.shutdown().await?;
            Result::Ok(())
        })?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Two readers of one group on `url`: once the second has taken a partition the first read
/// from, the first's commit of it is refused and reported. Returns what the first's commit
/// refused.
async fn refused_commit_on(url: &str) -> Result<Vec<u32>> {
    let topic = unique("refusal");
    let group = unique("refusal-group");
    let first_connection = Connection::open(url).await?;
    let mut producer = first_connection
        .producer::<u64>(TopicSpec::new(&topic).partitions(2))
        .await?;
    producer.send_batch(0, [10]).await?;
    producer.send_batch(1, [11]).await?;
    let mut first = first_connection
        .reader::<u64>(topic.as_str(), &group)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut read = 0;
    while read < 2 {
        assert!(
            Instant::now() < deadline,
            "{url}: the first reader read {read} of 2"
        );
        read += first
            .recv_batch(16, Duration::from_millis(200))
            .await?
            .len();
    }
    // Another process joins the group (a connection of its own; on the embedded broker, the
    // same broker) and takes a partition over; the first keeps polling, so that it learns of
    // the rebalance as a member does.
    let second_connection = match first_connection.broker() {
        Some(_) => first_connection.clone(),
        None => Connection::open(url).await?,
    };
    let mut second = second_connection
        .reader::<u64>(topic.as_str(), &group)
        .await?;
    let mut taken = Vec::new();
    while taken.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{url}: the second reader never got a partition"
        );
        first.recv_batch(16, Duration::from_millis(100)).await?;
        taken = second.recv_batch(16, Duration::from_millis(100)).await?;
    }
    let refused = first.commit().await?;
    let taken: Vec<u32> = taken.iter().map(|r| r.position.partition).collect();
    assert!(
        taken.iter().all(|p| refused.contains(p)),
        "{url}: the second reader took {taken:?}, the first's commit refused {refused:?}"
    );
    second.leave().await?;
    first.leave().await?;
    Ok(refused)
}

#[test]
fn a_commit_of_a_partition_another_member_took_is_refused_on_every_backend() -> Result {
    let redis = RedisServer::start();
    let tansu = Tansu::start();
    let mut urls = vec!["mem://".to_owned()];
    urls.extend(redis.as_ref().map(RedisServer::url));
    urls.extend(tansu.as_ref().map(Tansu::url));
    let rt = runtime();
    for url in urls {
        let refused = rt.block_on(refused_commit_on(&url))?;
        assert!(!refused.is_empty(), "{url}: nothing refused");
    }
    Ok(())
}

/// A reader that falls behind a topic's retention is told how many records it missed, once,
/// and goes on from the oldest kept: read + skipped is exactly what was sent (backends that
/// drop records by retention: the embedded broker; Redis trims without telling, see
/// `docs/bridges.md`).
#[test]
fn a_reader_behind_retention_is_told_exactly_what_it_missed() -> Result {
    use dataflow::broker::{Broker, Overflow, TopicConfig};
    let rt = runtime();
    rt.block_on(async {
        let broker = Broker::new();
        let lossy = broker.topic::<u64>(
            "lossy",
            TopicConfig::new().capacity(100, Overflow::DropOldest),
        )?;
        let producer = lossy.producer();
        producer
            .send_batch(0, (0..10).collect::<Vec<u64>>())
            .await?;
        let connection = Connection::mem(&broker);
        let mut reader = connection.reader::<u64>("lossy", "slow").await?;
        let mut read = reader
            .recv_batch(10, Duration::from_millis(200))
            .await?
            .len() as u64;
        producer
            .send_batch(0, (10..5_000).collect::<Vec<u64>>())
            .await?;
        let mut skipped = 0;
        loop {
            match reader.recv_batch(1000, Duration::from_millis(100)).await {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => read += batch.len() as u64,
                Err(dataflow::backend::BackendError::Lagged { skipped: n, .. }) => skipped += n,
                Err(other) => return Err(other.into()),
            }
        }
        assert!(skipped > 0, "the reader fell behind");
        assert_eq!(read + skipped, 5_000, "read {read}, skipped {skipped}");
        Result::Ok(())
    })
}

/// `start_at`: a source's new group starts at the end (only what is appended from now on) or
/// at a time (replay), on every backend that can (Kafka: not at a time).
async fn start_at_on(url: &str) -> Result {
    use dataflow::backend::StartAt;
    let connection = Connection::open(url).await?;
    let run = unique("start-at");
    let (input, output) = (format!("{run}.in"), format!("{run}.out"));
    let mut producer = connection.producer::<u64>(input.as_str()).await?;
    producer.send_batch(0, [1, 2, 3]).await?;
    let latest = Lucky::builder()
        .input(input.as_str())
        .output(output.as_str())
        .options(
            PipelineOptions::new()
                .connection(&connection)
                .group(&format!("{run}.latest"))
                .start_at(StartAt::Latest),
        )
        .start()
        .await?;
    // Records keep coming until some arrive (a Kafka group may take a while to get its
    // partitions); the ones there before the start never do.
    let mut reader = connection
        .reader::<u64>(output.as_str(), &format!("{run}.check"))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen = Vec::new();
    let mut next = 100;
    while seen.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "{url}: nothing after the start arrived"
        );
        producer.send_batch(0, [next]).await?;
        next += 1;
        for record in reader.recv_batch(16, Duration::from_millis(200)).await? {
            seen.push(record.value.map_err(|e| e.error)?);
        }
    }
    latest.shutdown().await?;
    assert!(
        seen.iter().all(|v| *v >= 100),
        "{url}: read what was there before: {seen:?}"
    );

    let at = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    producer.send_batch(0, [7, 8]).await?;
    let replay = Lucky::builder()
        .input(input.as_str())
        .output(format!("{run}.replay"))
        .options(
            PipelineOptions::new()
                .connection(&connection)
                .group(&format!("{run}.replay"))
                .start_at(StartAt::Timestamp(at)),
        )
        .start()
        .await;
    if connection.scheme() == "kafka" {
        assert!(replay.is_err(), "kafka:// cannot start a group at a time");
        return Ok(());
    }
    let replay = replay?;
    let mut reader = connection
        .reader::<u64>(format!("{run}.replay"), &format!("{run}.check-replay"))
        .await?;
    let mut replayed = Vec::new();
    while replayed.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "{url}: the replay never came: {replayed:?}"
        );
        for record in reader.recv_batch(16, Duration::from_millis(200)).await? {
            replayed.push(record.value.map_err(|e| e.error)?);
        }
    }
    replay.shutdown().await?;
    assert_eq!(
        replayed,
        [7, 8],
        "{url}: from the time on, and nothing before it"
    );
    Ok(())
}

#[test]
fn a_new_group_starts_at_the_end_or_at_a_time_on_every_backend() -> Result {
    let redis = RedisServer::start();
    let tansu = Tansu::start();
    let dir = std::env::temp_dir().join(unique("dataflow-start-at"));
    let mut urls = vec!["mem://".to_owned(), format!("file://{}", dir.display())];
    urls.extend(redis.as_ref().map(RedisServer::url));
    urls.extend(tansu.as_ref().map(Tansu::url));
    let rt = runtime();
    for url in urls {
        rt.block_on(start_at_on(&url))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
