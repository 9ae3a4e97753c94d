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
