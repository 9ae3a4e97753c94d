//! Keyed state on Redis and Kafka: two processes share a pipeline with a running count, one is
//! SIGKILLed, and the survivor takes its partitions over and continues their counts from the
//! changelog on the backend: every key's last count is the true one, and no count is ever
//! over it (a record counted twice).

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dataflow::backend::Connection;
use dataflow::{PipelineOptions, Sink, Source, TopicSpec, pipeline};
use support::kafka::Tansu;
use support::pipelines::{Result, runtime};
use support::redis::RedisServer;

const KEYS: u64 = 13;
const PARTITIONS: u32 = 4;

#[pipeline]
fn counted(input: Source<u64>, counts: Sink<(u64, u64)>) {
    input.key_by(|x: &u64| x % KEYS).count().to(counts);
}

/// Carries `url group` to a child process.
const CHILD_ENV: &str = "DATAFLOW_KEYED_STATE_CHILD";

/// The child role: runs `counted` until its standard input closes or it is killed.
#[test]
fn keyed_state_child() -> Result {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return Ok(()); // only a child process runs this
    };
    let (url, group) = spec.split_once(' ').expect("url group");
    runtime().block_on(async {
        let running = Counted::builder()
            .input(TopicSpec::new(format!("{group}.in")).partitions(PARTITIONS))
            .counts(TopicSpec::new(format!("{group}.counts")).partitions(PARTITIONS))
            .options(PipelineOptions::new().backend(url).group(group))
            .start()
            .await?;
        tokio::task::spawn_blocking(|| std::io::Read::read(&mut std::io::stdin(), &mut [0u8]))
            .await??;
        running.shutdown().await?;
        Ok(())
    })
}

/// A child process running `counted` on `url` in group `group`, killed when dropped.
struct Child_(Child);

impl Child_ {
    fn spawn(url: &str, group: &str) -> Self {
        Self(
            Command::new(std::env::current_exe().expect("the test binary"))
                .args(["--exact", "keyed_state_child", "--nocapture"])
                .env(CHILD_ENV, format!("{url} {group}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("a child process"),
        )
    }
}

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Feeds `records` numbers to two processes sharing the pipeline, SIGKILLs one half way
/// (and, `replace_after` that, starts a third in its place), and checks the counts the others
/// go on with.
fn survivor_continues_the_counts(
    url: &str,
    group: &str,
    records: u64,
    replace_after: Option<Duration>,
) -> Result {
    let rt = runtime();
    let connection = rt.block_on(Connection::open(url))?;
    let mut producer = rt.block_on(
        connection.producer::<u64>(TopicSpec::new(format!("{group}.in")).partitions(PARTITIONS)),
    )?;
    let mut first = Child_::spawn(url, group);
    let _second = Child_::spawn(url, group);
    let mut _replacement = None;
    let mut reader = rt.block_on(connection.reader::<(u64, u64)>(
        TopicSpec::new(format!("{group}.counts")).partitions(PARTITIONS),
        &format!("{group}.check"),
    ))?;
    let mut last = BTreeMap::<u64, u64>::new();
    let mut over = Vec::new();
    let expected = |key: u64, upto: u64| (0..upto).filter(|x| x % KEYS == key).count() as u64;
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut sent = 0;
    loop {
        if sent < records {
            let chunk: Vec<u64> = (sent..(sent + 50).min(records)).collect();
            let partition = (sent / 50 % u64::from(PARTITIONS)) as u32;
            rt.block_on(producer.send_batch(partition, chunk))?;
            sent = (sent + 50).min(records);
            if sent == records / 2 {
                // Both have settled in by now and hold state: one dies without a word.
                std::thread::sleep(Duration::from_secs(2));
                let _ = first.0.kill();
                let _ = first.0.wait();
                if let Some(after) = replace_after {
                    std::thread::sleep(after);
                    _replacement = Some(Child_::spawn(url, group));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for record in rt.block_on(reader.recv_batch(1024, Duration::from_millis(100)))? {
            let (key, count) = record.value.map_err(|e| e.error)?;
            if count > expected(key, records) {
                over.push((key, count));
            }
            let best = last.entry(key).or_default();
            *best = count.max(*best);
        }
        rt.block_on(reader.commit())?;
        if sent == records && (0..KEYS).all(|k| last.get(&k) == Some(&expected(k, records))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: the counts never reached the truth: {last:?}"
        );
    }
    assert!(
        over.is_empty(),
        "{url}: counts over the truth (a record counted twice): {over:?}"
    );
    Ok(())
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{name}-{nanos}")
}

#[test]
fn on_redis_the_survivor_of_a_sigkill_continues_the_counts() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    // A short lease, so that the survivor takes the dead one's partitions within a second.
    let url = format!("{}?lease_ms=1000", server.url());
    survivor_continues_the_counts(&url, &unique("counts"), 4000, None)
}

/// tansu (0.6) does not rebalance when a member's session expires: the dead member's
/// partitions move only when another member joins. So a replacement joins once the session
/// (6 s here) is over, as an operator's restart would; it or the survivor takes them over.
#[test]
fn on_kafka_the_members_after_a_sigkill_continue_the_counts() -> Result {
    let Some(tansu) = Tansu::start() else {
        return Ok(());
    };
    let url = format!("{}?session.timeout.ms=6000", tansu.url());
    survivor_continues_the_counts(&url, &unique("counts"), 2000, Some(Duration::from_secs(10)))
}
