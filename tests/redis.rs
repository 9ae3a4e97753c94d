//! The Redis Streams bridge against a real `redis-server` on loopback: the same pipeline as
//! on the embedded broker, interoperability with `redis-cli`, a server killed mid-stream
//! (R9), and refused credentials (R18).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dataflow::backend::{BackendError, Connection, Received};
use dataflow::{
    PipelineError, PipelineOptions, Sink, Source, StoredDeadLetter, TopicSpec, pipeline,
};
use support::KillPoints;
use support::pipelines::{Copy, Result, SlowCopy, Unlucky, Visit, Visits, WordCount, runtime};
use support::redis::{NotRedis, RedisServer};

#[pipeline]
fn shout(input: Source<String>, output: Sink<String>) {
    input.map(|s: String| s.to_uppercase()).to(output);
}

/// Reads `topic` through a group of its own until `done` says so or 60 s pass.
async fn read_until<T>(
    connection: &Connection,
    topic: impl Into<TopicSpec>,
    done: impl Fn(&[T]) -> bool,
) -> Result<Vec<T>>
where
    T: dataflow::Deliver,
{
    let mut reader = connection.reader::<T>(topic, "test-reader").await?;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&seen) {
        assert!(Instant::now() < deadline, "the output never completed");
        for Received { value, .. } in reader.recv_batch(1024, Duration::from_millis(200)).await? {
            seen.push(value.map_err(|e| e.error)?);
        }
        reader.commit().await?;
    }
    Ok(seen)
}

const TEXT: [&str; 4] = [
    "the quick brown fox",
    "jumps over the lazy dog",
    "the dog sleeps",
    "quick quick fox",
];

/// Runs word count on `url` and returns the final count of every word.
async fn word_count_on(url: &str, run: &str) -> Result<BTreeMap<String, u64>> {
    let connection = Connection::open(url).await?;
    let (lines, counts) = (format!("lines-{run}"), format!("counts-{run}"));
    let mut producer = connection
        .producer::<String>(TopicSpec::new(&lines).partitions(2))
        .await?;
    let running = WordCount::builder()
        .lines(lines.as_str())
        .counts(TopicSpec::new(&counts).partitions(2))
        .options(PipelineOptions::new().connection(&connection).group(run))
        .start()
        .await?;
    for (i, line) in TEXT.iter().enumerate() {
        producer
            .send_batch(i as u32 % 2, [line.to_string()])
            .await?;
    }
    let total: usize = TEXT.iter().map(|l| l.split_whitespace().count()).sum();
    let updates =
        read_until::<(String, u64)>(&connection, counts.as_str(), |seen| seen.len() >= total)
            .await?;
    running.shutdown().await?;
    let mut last = BTreeMap::new();
    for (word, count) in updates {
        let entry = last.entry(word).or_insert(0);
        *entry = count.max(*entry);
    }
    Ok(last)
}

#[test]
fn the_same_pipeline_gives_the_same_output_on_redis_and_in_memory() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let rt = runtime();
    let on_mem = rt.block_on(word_count_on("mem://", "wc"))?;
    let on_redis = rt.block_on(word_count_on(&server.url(), "wc"))?;
    assert_eq!(on_mem.get("quick"), Some(&3));
    assert_eq!(on_redis, on_mem);
    // The repartition topic lived on Redis too.
    let keys = server.cli(&["KEYS", "*"]);
    assert!(keys.contains("wc.key_by_3.internal:0"), "{keys}");
    Ok(())
}

#[test]
fn records_from_redis_cli_are_read_and_the_output_is_readable_json() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    for (i, page) in ["/", "/cart", "/"].iter().enumerate() {
        let json = format!(r#"{{"user":{i},"page":"{page}"}}"#);
        server.cli(&["XADD", "clicks:0", "*", "payload", &json]);
    }
    // Not a click: a dead letter, and the pipeline goes on.
    let bad_id = server.cli(&["XADD", "clicks:0", "*", "payload", "{not json"]);
    let bad_id = bad_id.trim().to_owned();
    server.cli(&[
        "XADD",
        "clicks:0",
        "*",
        "payload",
        r#"{"user":9,"page":"/"}"#,
    ]);
    let rt = runtime();
    rt.block_on(async {
        let running = Visits::builder()
            .clicks(TopicSpec::new("clicks").json())
            .out(TopicSpec::new("visits").json())
            .options(PipelineOptions::new().backend(&server.url()))
            .start()
            .await?;
        let connection = running.connection().clone();
        let seen = read_until::<Visit>(&connection, TopicSpec::new("visits").json(), |s| {
            s.len() >= 4
        })
        .await?;
        assert_eq!(
            seen.iter().map(|v| v.user).collect::<Vec<_>>(),
            [0, 1, 2, 9]
        );
        let mut dead = running
            .dead_letters()
            .consumer(dataflow::broker::Start::Earliest)?;
        let record = dead.recv().await?;
        let letter = record.value();
        assert_eq!(letter.stage, "decode");
        let payload = letter.value::<Vec<u8>>().map(Vec::as_slice);
        assert_eq!(payload, Some(&b"{not json"[..]));
        // It points at the entry as a Redis user names it (issue 15, item 9).
        assert_eq!(letter.id.as_deref(), Some(bad_id.as_str()));
        assert!(
            letter.to_string().contains(&format!("clicks[0]@{bad_id}")),
            "{letter}"
        );
        running.shutdown().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // A standard client reads the output as JSON.
    let out = server.cli(&["XRANGE", "visits:0", "-", "+"]);
    assert!(out.contains(r#"{"user":1,"home":false}"#), "{out}");
    assert!(out.contains(r#"{"user":9,"home":true}"#), "{out}");
    Ok(())
}

/// Entry ids are two 64-bit numbers, and other tools choose their own: every id Redis accepts
/// is processed, in order, whether or not it packs into a 64-bit position (issue 15, item 1:
/// `1-1048576` used to fail the task and stall the partition for ever).
#[test]
fn every_entry_id_redis_accepts_is_processed_in_order() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let ids = [
        "1-1",
        "1-1048576",
        "2-0",
        "9000000000000-0",
        "9000000000000-18446744073709551615",
        "18446744073709551615-0",
        "18446744073709551615-18446744073709551615",
    ];
    for (i, id) in ids.iter().enumerate() {
        server.cli(&["XADD", "ids:0", id, "payload", &format!("\"entry {i}\"")]);
    }
    runtime().block_on(async {
        let running = Shout::builder()
            .input(TopicSpec::new("ids").json())
            .output(TopicSpec::new("ids-out").json())
            .options(PipelineOptions::new().backend(&server.url()).group("ids"))
            .start()
            .await?;
        let connection = running.connection().clone();
        let seen = read_until::<String>(&connection, TopicSpec::new("ids-out").json(), |s| {
            s.len() >= ids.len()
        })
        .await?;
        let expected: Vec<String> = (0..ids.len()).map(|i| format!("ENTRY {i}")).collect();
        assert_eq!(seen, expected);
        let metrics = running.shutdown().await?;
        assert_eq!(metrics.outages, 0, "{metrics}");
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // Every entry was acknowledged by its real id.
    let pending = server.cli(&["XPENDING", "ids:0", "ids.segment-0"]);
    assert!(pending.starts_with('0'), "pending entries left: {pending}");
    Ok(())
}

/// Issue 15, item 10: streams another tool wrote past the partitions a pipeline declares are
/// refused at start, with the count that would read them, instead of being ignored.
#[test]
fn streams_beyond_the_declared_partitions_are_refused_not_ignored() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    for partition in 0..4 {
        let stream = format!("extra:{partition}");
        let json = format!("\"from {partition}\"");
        server.cli(&["XADD", &stream, "*", "payload", &json]);
    }
    let rt = runtime();
    let start = |partitions: u32| {
        rt.block_on(
            Shout::builder()
                .input(TopicSpec::new("extra").json().partitions(partitions))
                .output(TopicSpec::new("extra-out").json())
                .options(PipelineOptions::new().backend(&server.url()).group("extra"))
                .start(),
        )
    };
    let Err(err) = start(1) else {
        panic!("started with 3 streams it would never read");
    };
    let shown = err.to_string();
    assert!(shown.contains("extra:1, extra:2, extra:3"), "{shown}");
    assert!(shown.contains("declare 4 partitions"), "{shown}");
    // As the error says: every stream is read.
    let running = start(4)?;
    rt.block_on(async {
        let connection = running.connection().clone();
        let mut seen = read_until::<String>(&connection, TopicSpec::new("extra-out").json(), |s| {
            s.len() >= 4
        })
        .await?;
        seen.sort();
        assert_eq!(seen, ["FROM 0", "FROM 1", "FROM 2", "FROM 3"]);
        running.shutdown().await?;
        Ok(())
    })
}

#[test]
fn a_stage_failure_on_redis_is_a_dead_letter_with_the_input_value() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    runtime().block_on(async {
        let connection = Connection::open(&server.url()).await?;
        let running = Unlucky::builder()
            .input("numbers")
            .output("lucky")
            .options(PipelineOptions::new().connection(&connection))
            .start()
            .await?;
        let mut producer = connection.producer::<u64>("numbers").await?;
        producer.send_batch(0, [12, 13, 14]).await?;
        let seen = read_until::<u64>(&connection, "lucky", |s| s.len() >= 2).await?;
        assert_eq!(seen, [12, 14]);
        let mut dead = running
            .dead_letters()
            .consumer(dataflow::broker::Start::Earliest)?;
        let record = dead.recv().await?;
        let letter = record.value();
        assert_eq!(letter.error, "unlucky");
        assert_eq!(letter.value::<u64>(), Some(&13));
        running.shutdown().await?;
        Ok(())
    })
}

/// Dead letters are kept in a Redis stream, written before the failed record is committed:
/// once the pipeline is gone, another process reads them, payloads included, and a standard
/// client reads them as JSON.
#[test]
fn dead_letters_are_kept_on_redis_and_outlive_the_pipeline() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let input = TopicSpec::new("kept-in").json();
    let rt = runtime();
    rt.block_on(async {
        let connection = Connection::open(&server.url()).await?;
        let running = Unlucky::builder()
            .input(input.clone())
            .output("kept-out")
            .options(PipelineOptions::new().connection(&connection).group("kept"))
            .start()
            .await?;
        assert_eq!(running.dead_letter_topic(), Some("kept.dead-letters"));
        let mut producer = connection.producer::<u64>(input.clone()).await?;
        producer.send_batch(0, [12, 13]).await?;
        // A payload that is not a number, from another tool.
        server.cli(&["XADD", "kept-in:0", "*", "payload", "\"thirteen\""]);
        producer.send_batch(0, [14]).await?;
        let seen = read_until::<u64>(&connection, "kept-out", |s| s.len() >= 2).await?;
        assert_eq!(seen, [12, 14]);
        running.shutdown().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let letters = rt.block_on(async {
        let triage = Connection::open(&server.url()).await?;
        let spec = TopicSpec::new("kept.dead-letters").json();
        read_until::<StoredDeadLetter>(&triage, spec, |s| s.len() >= 2).await
    })?;
    let [failed, undecodable] = <[StoredDeadLetter; 2]>::try_from(letters).expect("two letters");
    assert_eq!(failed.pipeline, "unlucky");
    assert_eq!(failed.error, "unlucky");
    assert!(!failed.panicked);
    assert_eq!((failed.topic.as_str(), failed.partition), ("kept-in", 0));
    assert_eq!(failed.format.as_deref(), Some("json"));
    assert_eq!(failed.decode::<u64>().transpose()?, Some(13));
    assert_eq!(undecodable.stage, "decode");
    assert_eq!(undecodable.payload.as_deref(), Some(&b"\"thirteen\""[..]));
    assert!(undecodable.offset > failed.offset);
    // A standard client reads them as JSON.
    let raw = server.cli(&["XRANGE", "kept.dead-letters:0", "-", "+"]);
    assert!(raw.contains(r#""error":"unlucky""#), "{raw}");
    Ok(())
}

/// Issue 15, item 3: a dead letter's payload is stored as base64 (4 characters for 3 bytes),
/// so a 20 MiB payload that did not decode is kept within the store's 64 MiB limit (as an
/// array of numbers it took about 80 MiB and was dropped), and reads back byte for byte.
/// A dead letter too large for the store even in base64 (64 MiB) is kept without its payload,
/// saying how large it was, and counted (issue 15, item 3): never silently dropped.
#[test]
fn a_dead_letter_too_large_to_keep_is_kept_without_its_payload_and_counted() -> Result {
    let Some(server) = RedisServer::start_with(&[
        "--save",
        "",
        "--appendonly",
        "no",
        "--proto-max-bulk-len",
        "256mb",
    ]) else {
        return Ok(());
    };
    let payload: Vec<u8> = (0..50 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    let mut redis = redis::Client::open(server.url())?.get_connection()?;
    let _: String = redis::cmd("XADD")
        .arg("huge-in:0")
        .arg("*")
        .arg("payload")
        .arg(&payload)
        .query(&mut redis)?;
    drop(payload);
    let rt = runtime();
    rt.block_on(async {
        let connection = Connection::open(&server.url()).await?;
        let running = Unlucky::builder()
            .input("huge-in")
            .output("huge-out")
            .options(PipelineOptions::new().connection(&connection).group("huge"))
            .start()
            .await?;
        connection
            .producer::<u64>("huge-in")
            .await?
            .send_batch(0, [12])
            .await?;
        let seen = read_until::<u64>(&connection, "huge-out", |s| !s.is_empty()).await?;
        assert_eq!(seen, [12]);
        let metrics = running.shutdown().await?;
        assert_eq!(metrics.dead_letters_stripped, 1);
        let spec = TopicSpec::new("huge.dead-letters").codec(StoredDeadLetter::codec());
        let letters = read_until::<StoredDeadLetter>(&connection, spec, |s| !s.is_empty()).await?;
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].stage, "decode");
        assert_eq!(letters[0].payload, None);
        assert!(
            letters[0]
                .error
                .contains(&format!("payload of {} bytes was not kept", 50 << 20)),
            "{}",
            letters[0].error
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

#[test]
fn a_large_undecodable_payload_is_kept_as_a_dead_letter() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let payload: Vec<u8> = (0..20 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    let mut redis = redis::Client::open(server.url())?.get_connection()?;
    let _: String = redis::cmd("XADD")
        .arg("big-in:0")
        .arg("*")
        .arg("payload")
        .arg(&payload)
        .query(&mut redis)?;
    let rt = runtime();
    rt.block_on(async {
        let connection = Connection::open(&server.url()).await?;
        let running = Unlucky::builder()
            .input("big-in")
            .output("big-out")
            .options(PipelineOptions::new().connection(&connection).group("big"))
            .start()
            .await?;
        connection
            .producer::<u64>("big-in")
            .await?
            .send_batch(0, [12])
            .await?;
        let seen = read_until::<u64>(&connection, "big-out", |s| !s.is_empty()).await?;
        assert_eq!(seen, [12]);
        running.shutdown().await?;
        let spec = TopicSpec::new("big.dead-letters").codec(StoredDeadLetter::codec());
        let letters = read_until::<StoredDeadLetter>(&connection, spec, |s| !s.is_empty()).await?;
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].stage, "decode");
        assert!(
            letters[0].payload.as_deref() == Some(&payload[..]),
            "not the payload"
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // What a standard client sees: base64, about 4/3 of the payload.
    let stored: Vec<(String, Vec<Field>)> = redis::cmd("XRANGE")
        .arg("big.dead-letters:0")
        .arg("-")
        .arg("+")
        .query(&mut redis)?;
    let json = &stored[0].1[0].1;
    assert!(
        json.len() < payload.len() / 3 * 4 + 4096,
        "{} bytes",
        json.len()
    );
    Ok(())
}

async fn unlucky_later(x: u64) -> std::result::Result<u64, &'static str> {
    if x == 13 { Err("unlucky later") } else { Ok(x) }
}

#[pipeline]
fn unlucky_async(input: Source<u64>, output: Sink<u64>) {
    input.map_async(unlucky_later, 4).to(output);
}

/// An async stage's input is no longer in its payload's form when the stage fails: the
/// stored dead letter carries it encoded again, in the input's codec.
#[test]
fn an_async_stage_failure_is_kept_on_redis_with_its_input() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    runtime().block_on(async {
        let connection = Connection::open(&server.url()).await?;
        let running = UnluckyAsync::builder()
            .input("later-in")
            .output("later-out")
            .options(
                PipelineOptions::new()
                    .connection(&connection)
                    .group("later"),
            )
            .start()
            .await?;
        let mut producer = connection.producer::<u64>("later-in").await?;
        producer.send_batch(0, [12, 13, 14]).await?;
        let seen = read_until::<u64>(&connection, "later-out", |s| s.len() >= 2).await?;
        assert_eq!(seen, [12, 14]);
        let spec = TopicSpec::new("later.dead-letters").json();
        let letters = read_until::<StoredDeadLetter>(&connection, spec, |s| !s.is_empty()).await?;
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].error, "unlucky later");
        assert_eq!(letters[0].format.as_deref(), Some("bincode"));
        assert_eq!(letters[0].decode::<u64>().transpose()?, Some(13));
        running.shutdown().await?;
        Ok(())
    })
}

#[test]
fn an_output_too_large_for_its_codec_is_a_dead_letter_and_the_rest_goes_on() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    runtime().block_on(async {
        let connection = Connection::open(&server.url()).await?;
        let small = dataflow::codec::Codec::bincode().max_bytes(16);
        let running = Shout::builder()
            .input("words")
            .output(TopicSpec::new("loud").codec(small))
            .options(PipelineOptions::new().connection(&connection))
            .start()
            .await?;
        let mut producer = connection.producer::<String>("words").await?;
        let long = "x".repeat(100);
        producer
            .send_batch(0, ["a".to_owned(), long.clone(), "b".to_owned()])
            .await?;
        let seen = read_until::<String>(&connection, TopicSpec::new("loud").codec(small), |s| {
            s.len() >= 2
        })
        .await?;
        assert_eq!(seen, ["A", "B"]);
        let mut dead = running
            .dead_letters()
            .consumer(dataflow::broker::Start::Earliest)?;
        let record = dead.recv().await?;
        let letter = record.value();
        assert_eq!(letter.stage, "encode");
        assert!(letter.error.contains("loud"), "{}", letter.error);
        assert_eq!(letter.value::<String>(), Some(&long.to_uppercase()));
        running.shutdown().await?;
        Ok(())
    })
}

#[test]
fn r9_redis_killed_and_restarted_mid_stream_loses_nothing() -> Result {
    let Some(mut server) = RedisServer::start_durable() else {
        return Ok(());
    };
    // As RELIABILITY.md's R9: 5 kills during 100k records.
    const N: u64 = 100_000;
    const KILLS: u64 = 5;
    let rt = runtime();
    let url = server.url();
    let connection = rt.block_on(Connection::open(&url))?;
    let running = rt.block_on(
        Copy::builder()
            .input(TopicSpec::new("r9-in").partitions(2))
            .output(TopicSpec::new("r9-out").partitions(2))
            .options(PipelineOptions::new().connection(&connection).group("r9"))
            .start(),
    )?;
    let producer = {
        let connection = connection.clone();
        rt.spawn(async move {
            let mut producer = connection.producer::<u64>("r9-in").await?;
            for start in (0..N).step_by(100) {
                producer
                    .send_batch((start / 100 % 2) as u32, start..start + 100)
                    .await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok::<_, BackendError>(())
        })
    };
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(400));
        server.kill();
        std::thread::sleep(Duration::from_millis(300));
        server.restart();
    }
    rt.block_on(producer)??;
    let seen = rt.block_on(read_until::<u64>(&connection, "r9-out", |seen| {
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        unique.len() as u64 >= N
    }))?;
    rt.block_on(running.shutdown())?;
    let unique: std::collections::BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len() as u64, N, "records lost");
    assert_eq!(unique.last(), Some(&(N - 1)));
    eprintln!(
        "r9: {} records, {} duplicates after {KILLS} kills",
        N,
        seen.len() as u64 - N
    );
    // The pipeline's group acknowledged everything it read.
    for partition in 0..2 {
        let pending = server.cli(&["XPENDING", &format!("r9-in:{partition}"), "r9.segment-0"]);
        assert!(pending.starts_with('0'), "pending entries left: {pending}");
    }
    Ok(())
}

#[test]
fn r18_a_wrong_password_fails_fast_and_is_never_printed() -> Result {
    let Some(server) = RedisServer::start_with(&["--save", "", "--requirepass", "s3cret-pw"])
    else {
        return Ok(());
    };
    let rt = runtime();
    let started = Instant::now();
    let url = format!("redis://:not-the-pw@127.0.0.1:{}", server.port);
    let err = rt.block_on(Connection::open(&url)).unwrap_err();
    assert!(matches!(err, BackendError::Auth { .. }), "{err:?}");
    assert!(err.is_fatal());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not fast: a retry loop?"
    );
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(
            !shown.contains("not-the-pw") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
    // The right password from an environment variable works.
    // SAFETY: nothing else in this test process reads or writes this variable.
    unsafe { std::env::set_var("DATAFLOW_TEST_REDIS_PW", "s3cret-pw") };
    let url = format!(
        "redis://127.0.0.1:{}?password_env=DATAFLOW_TEST_REDIS_PW",
        server.port
    );
    rt.block_on(Connection::open(&url))?;
    // And as a parameter, as on Kafka.
    let url = format!("redis://127.0.0.1:{}?password=s3cret-pw", server.port);
    rt.block_on(Connection::open(&url))?;
    Ok(())
}

/// A user without `+xadd` is refused when the producer is made, before anything is sent; and
/// one whose right is taken away later gets the refusal from the send itself.
#[test]
fn r18_a_user_without_xadd_is_refused_and_nothing_is_written() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    server.cli(&[
        "ACL",
        "SETUSER",
        "reader",
        "on",
        ">reader-pw",
        "~*",
        "+@all",
        "-xadd",
    ]);
    let rt = runtime();
    let url = format!("redis://reader:reader-pw@127.0.0.1:{}", server.port);
    let err = rt.block_on(async {
        let connection = Connection::open(&url).await?;
        connection
            .producer::<u64>(TopicSpec::new("acl-topic").partitions(2))
            .await
            .map(drop)
    });
    let err = err.unwrap_err();
    assert!(matches!(err, BackendError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("xadd"), "{err}");
    assert_eq!(server.cli(&["XLEN", "acl-topic:0"]).trim(), "0");
    // The right taken away after the producer was made: the send fails, nothing is written.
    server.cli(&["ACL", "SETUSER", "reader", "+xadd"]);
    let err = rt.block_on(async {
        let connection = Connection::open(&url).await?;
        let mut producer = connection.producer::<u64>("acl-topic").await?;
        server.cli(&["ACL", "SETUSER", "reader", "-xadd"]);
        producer.send_batch(0, [1, 2, 3]).await
    });
    let err = err.unwrap_err();
    assert!(matches!(err, BackendError::Auth { .. }), "{err:?}");
    assert_eq!(server.cli(&["XLEN", "acl-topic:0"]).trim(), "0");
    Ok(())
}

/// Issue 15, item 2: a pipeline whose user may not write its sink fails before it reads a
/// record (its output checks `XADD` on every stream first), so nothing is read, counted as
/// output or committed; the refusal is the pipeline's error.
#[test]
fn r22_a_pipeline_that_may_not_write_its_sink_reads_nothing() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    // Anything but writing `nowrite-out`.
    server.cli(&[
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">app-pw",
        "~nowrite-in:*",
        "~nowrite.*",
        "~dataflow:*",
        "%R~nowrite-out:*",
        "+@all",
    ]);
    let rt = runtime();
    let connection = rt.block_on(Connection::open(&server.url()))?;
    rt.block_on(async {
        let mut producer = connection
            .producer::<u64>(TopicSpec::new("nowrite-in").partitions(2))
            .await?;
        producer.send_batch(0, [1, 2]).await?;
        producer.send_batch(1, [3]).await?;
        Ok::<_, BackendError>(())
    })?;
    let url = format!("redis://app:app-pw@127.0.0.1:{}", server.port);
    let running = rt.block_on(
        Copy::builder()
            .input(TopicSpec::new("nowrite-in").partitions(2))
            .output(TopicSpec::new("nowrite-out").partitions(2))
            .options(PipelineOptions::new().backend(&url).group("nowrite"))
            .start(),
    )?;
    // Time enough for a task to read its partition, had it started.
    std::thread::sleep(Duration::from_secs(2));
    let metrics = running.metrics();
    assert!(
        metrics.stages.iter().all(|stage| stage.count == 0),
        "records were processed: {metrics}"
    );
    let err = rt
        .block_on(running.shutdown())
        .expect_err("the sink is read-only");
    assert!(
        matches!(&err, PipelineError::Backend(BackendError::Auth { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("nowrite-out"), "{err}");
    for partition in 0..2 {
        let stream = format!("nowrite-in:{partition}");
        let pending = server.cli(&["XPENDING", &stream, "nowrite.segment-0"]);
        assert!(pending.starts_with('0'), "read, not committed: {pending}");
        let groups = server.cli(&["XINFO", "GROUPS", &stream]);
        assert!(
            groups.contains("last-delivered-id\n0-0\n"),
            "entries were delivered: {groups}"
        );
    }
    assert_eq!(server.cli(&["XLEN", "nowrite-out:0"]).trim(), "0");
    Ok(())
}

/// A user who may not read with a consumer group is refused when it joins, before a read.
#[test]
fn r18_a_user_without_xreadgroup_is_refused_when_it_joins() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    server.cli(&[
        "ACL",
        "SETUSER",
        "writer",
        "on",
        ">writer-pw",
        "~*",
        "+@all",
        "-xreadgroup",
    ]);
    let rt = runtime();
    let url = format!("redis://writer:writer-pw@127.0.0.1:{}", server.port);
    let err = rt
        .block_on(async {
            let connection = Connection::open(&url).await?;
            connection
                .reader::<u64>("noread", "readers")
                .await
                .map(drop)
        })
        .unwrap_err();
    assert!(matches!(err, BackendError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("xreadgroup"), "{err}");
    // A pipeline reading with that user does not start.
    let refused = rt.block_on(
        Copy::builder()
            .input("noread")
            .output("noread-out")
            .options(PipelineOptions::new().backend(&url))
            .start(),
    );
    let Err(err) = refused else {
        panic!("a pipeline started without the right to read its source");
    };
    assert!(err.to_string().contains("xreadgroup"), "{err}");
    Ok(())
}

#[test]
fn r18_plaintext_to_a_tls_only_server_fails_fast_and_tls_works() -> Result {
    let Some(server) = RedisServer::start_tls() else {
        return Ok(());
    };
    let rt = runtime();
    let started = Instant::now();
    let err = rt.block_on(Connection::open(&server.url())).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "not fast");
    assert!(err.to_string().contains("TLS"), "{err}");
    // TLS without trusting the server's certificate: refused, as a TLS error.
    let tls = format!("rediss://127.0.0.1:{}", server.port);
    let err = rt.block_on(Connection::open(&tls)).unwrap_err();
    assert!(matches!(err, BackendError::Tls { .. }), "{err:?}");
    // With its certificate authority: records go through.
    let ca = server.tls_certificate();
    let tls = format!("{tls}?ca_file={}", ca.display());
    rt.block_on(async {
        let connection = Connection::open(&tls).await?;
        let mut producer = connection.producer::<u64>("tls-topic").await?;
        producer.send_batch(0, [7, 8]).await?;
        let seen = read_until::<u64>(&connection, "tls-topic", |s| s.len() >= 2).await?;
        assert_eq!(seen, [7, 8]);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

/// Mutual TLS: a server that asks for a client certificate refuses a client without one (a
/// fast, typed TLS error) and accepts one that presents `cert_file` and `key_file`.
#[test]
fn r18_mutual_tls_needs_the_client_certificate() -> Result {
    let Some(server) = RedisServer::start_mutual_tls() else {
        return Ok(());
    };
    let rt = runtime();
    let tls = format!(
        "rediss://127.0.0.1:{}?ca_file={}",
        server.port,
        server.tls_certificate().display()
    );
    let started = Instant::now();
    let err = rt.block_on(Connection::open(&tls)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "not fast");
    assert!(matches!(err, BackendError::Tls { .. }), "{err:?}");
    // Half an identity is a mistake in the URL, said before connecting.
    let (cert, key) = server.tls_client();
    let half = format!("{tls}&cert_file={}", cert.display());
    let err = rt.block_on(Connection::open(&half)).unwrap_err();
    assert!(
        err.to_string()
            .contains("cert_file and key_file go together"),
        "{err}"
    );
    let mutual = format!("{half}&key_file={}", key.display());
    rt.block_on(async {
        let connection = Connection::open(&mutual).await?;
        let mut producer = connection.producer::<u64>("mtls-topic").await?;
        producer.send_batch(0, [5, 6]).await?;
        let seen = read_until::<u64>(&connection, "mtls-topic", |s| s.len() >= 2).await?;
        assert_eq!(seen, [5, 6]);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

/// The child role of R2: runs `slow_copy` in group `r2` until it is killed.
#[test]
fn r2_child() -> Result {
    let Ok(url) = std::env::var("DATAFLOW_R2_CHILD") else {
        return Ok(()); // only a child process of the R2 test runs this
    };
    runtime().block_on(async {
        let _running = SlowCopy::builder()
            .input(TopicSpec::new("r2-in").partitions(4))
            .output(TopicSpec::new("r2-out").partitions(4))
            .options(PipelineOptions::new().backend(&url).group("r2").batch(16))
            .start()
            .await?;
        // Until the parent test ends (or dies): its end of our stdin closes.
        tokio::task::spawn_blocking(|| std::io::Read::read(&mut std::io::stdin(), &mut [0u8]))
            .await??;
        Ok(())
    })
}

/// A Redis outage longer than the bridge's own retries (500 ms here, `retry_for_ms`): the
/// pipeline's tasks end on it, join their group again once the server is back, and go on;
/// nothing is lost, and the metrics count the outage.
#[test]
fn tasks_rejoin_their_group_after_an_outage_longer_than_the_retries() -> Result {
    let Some(mut server) = RedisServer::start_durable() else {
        return Ok(());
    };
    let rt = runtime();
    let pipeline_url = format!("{}?retry_for_ms=500", server.url());
    // The test's own producer and readers retry for the default 30 s.
    let connection = rt.block_on(Connection::open(&server.url()))?;
    let running = rt.block_on(
        Copy::builder()
            .input(TopicSpec::new("outage-in").partitions(2))
            .output(TopicSpec::new("outage-out").partitions(2))
            .options(
                PipelineOptions::new()
                    .backend(&pipeline_url)
                    .group("outage"),
            )
            .start(),
    )?;
    let send = |range: std::ops::Range<u64>| {
        rt.block_on(async {
            let mut producer = connection.producer::<u64>("outage-in").await?;
            for v in range {
                producer.send_batch((v % 2) as u32, [v]).await?;
            }
            Ok::<_, BackendError>(())
        })
    };
    // Each read goes on from the test reader's last commit.
    let read_all = |range: std::ops::Range<u64>| {
        rt.block_on(read_until::<u64>(&connection, "outage-out", |seen| {
            let seen: std::collections::HashSet<_> = seen.iter().collect();
            range.clone().all(|v| seen.contains(&v))
        }))
    };
    send(0..100)?;
    read_all(0..100)?;
    // Down for 3 s: every task's next operation fails after its 500 ms of retries.
    server.kill();
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    send(100..200)?;
    read_all(100..200)?;
    let metrics = running.metrics();
    assert!(metrics.outages > 0, "no task saw the outage: {metrics}");
    assert!(
        metrics
            .last_outage
            .as_deref()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "{:?}",
        metrics.last_outage
    );
    rt.block_on(running.shutdown())?;
    Ok(())
}

#[pipeline]
fn slow_regroup(input: Source<u64>, out: Sink<(u64, u64)>) {
    input
        .key_by(|x: &u64| x % 2)
        .map(|pair: (u64, u64)| {
            std::thread::sleep(Duration::from_micros(200));
            pair
        })
        .to(out);
}

/// Backpressure across a repartition on Redis: the segment after the internal topic copies
/// 5 000 records a second, the one before it could write 20 times faster; it waits instead,
/// so the internal streams never hold much more than `internal_capacity` records a partition
/// that the downstream group has not processed. Every record still arrives.
#[test]
fn a_slow_segment_holds_back_the_one_before_it_on_redis() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    const N: u64 = 4_000;
    const CAPACITY: u64 = 200;
    const BATCH: u64 = 16;
    let rt = runtime();
    let connection = rt.block_on(Connection::open(&server.url()))?;
    let input = TopicSpec::new("bp-in").partitions(2);
    rt.block_on(async {
        let mut producer = connection.producer::<u64>(input.clone()).await?;
        for start in (0..N).step_by(100) {
            producer
                .send_batch((start / 100 % 2) as u32, start..start + 100)
                .await?;
        }
        Ok::<_, BackendError>(())
    })?;
    let running = rt.block_on(
        SlowRegroup::builder()
            .input(input)
            .out(TopicSpec::new("bp-out").partitions(2))
            .options(
                PipelineOptions::new()
                    .connection(&connection)
                    .group("bp")
                    .internal_capacity(CAPACITY)
                    .batch(BATCH as usize),
            )
            .start(),
    )?;
    // The internal streams' backlog (lag + pending of their group), sampled every 5 ms.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampling = {
        let (stop, url) = (std::sync::Arc::clone(&stop), server.url());
        std::thread::spawn(move || -> redis::RedisResult<(u64, usize)> {
            let mut redis = redis::Client::open(url)?.get_connection()?;
            let (mut most, mut samples) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg("bp.*.internal:*")
                    .query(&mut redis)?;
                for key in keys {
                    let groups: Vec<GroupInfo> = redis::cmd("XINFO")
                        .arg("GROUPS")
                        .arg(&key)
                        .query(&mut redis)?;
                    for group in groups {
                        let number = |field: &str| match group.get(field) {
                            Some(redis::Value::Int(n)) => Some(*n as u64),
                            _ => None,
                        };
                        if let (Some(lag), Some(pending)) = (number("lag"), number("pending")) {
                            most = most.max(lag + pending);
                            samples += 1;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok((most, samples))
        })
    };
    let seen = rt.block_on(read_until::<(u64, u64)>(&connection, "bp-out", |seen| {
        seen.iter()
            .map(|(_, v)| v)
            .collect::<std::collections::HashSet<_>>()
            .len() as u64
            >= N
    }));
    stop.store(true, std::sync::atomic::Ordering::Release);
    let (most, samples) = sampling.join().expect("the sampler")?;
    seen?;
    rt.block_on(running.shutdown())?;
    // Each of the 2 upstream tasks checks after an eighth of the capacity and may send one
    // batch more before it sees the bound: that much above it, at most.
    let bound = CAPACITY + 2 * (CAPACITY / 8 + BATCH);
    eprintln!("backpressure: at most {most} records behind ({samples} samples, bound {bound})");
    assert!(samples > 0, "the internal streams were never sampled");
    assert!(
        most <= bound,
        "{most} records behind the downstream group, over {bound}"
    );
    Ok(())
}

/// A producer held back by a downstream segment that then fails for good (its user loses the
/// right to write the sink) gives up too: the pipeline fails, and its shutdown returns the
/// error instead of waiting forever on a backlog nobody reads.
#[test]
fn a_producer_held_back_by_a_failed_segment_gives_up() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    server.cli(&[
        "ACL", "SETUSER", "app", "on", ">app-pw", "~*", "&*", "+@all",
    ]);
    let rt = runtime();
    let url = format!("redis://app:app-pw@127.0.0.1:{}", server.port);
    let connection = rt.block_on(Connection::open(&server.url()))?;
    let input = TopicSpec::new("gone-in").partitions(2);
    let running = rt.block_on(
        SlowRegroup::builder()
            .input(input.clone())
            .out(TopicSpec::new("gone-out").partitions(2))
            .options(
                PipelineOptions::new()
                    .backend(&url)
                    .group("gone")
                    .internal_capacity(50)
                    .batch(16),
            )
            .start(),
    )?;
    rt.block_on(async {
        let mut producer = connection.producer::<u64>(input).await?;
        producer.send_batch(0, 0..100).await?;
        read_until::<(u64, u64)>(&connection, "gone-out", |seen| !seen.is_empty()).await?;
        // From now on the sink is read-only for the pipeline's user.
        server.cli(&[
            "ACL",
            "SETUSER",
            "app",
            "resetkeys",
            "~gone-in:*",
            "~gone.*",
            "~dataflow:*",
            "%R~gone-out:*",
        ]);
        for start in (100..20_000).step_by(100) {
            producer
                .send_batch((start / 100 % 2) as u32, start..start + 100)
                .await?;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let stopped = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), running.shutdown()).await
    });
    let Ok(result) = stopped else {
        panic!("the shutdown waited on the backlog for a minute");
    };
    // The cause, not the producer that gave up because of it.
    let err = result.expect_err("the sink's segment failed");
    assert!(
        matches!(&err, PipelineError::Backend(BackendError::Auth { .. })),
        "{err:?}"
    );
    Ok(())
}

/// Issue 15, items 5 and 6, and issue 13 section 4: what connecting to the wrong thing, or
/// with values that cannot work, says.
#[test]
fn bad_redis_urls_and_servers_say_what_is_wrong() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let rt = runtime();
    let open = |url: String| {
        rt.block_on(async {
            // Bounds the test; the connect timeout is what ends each attempt.
            tokio::time::timeout(Duration::from_secs(30), Connection::open(&url))
                .await
                .expect("connecting gave up in time")
        })
        .expect_err("refused")
    };
    // Values that cannot work, refused although the server is fine.
    for bad in [
        "lease_ms=0",
        "max_len=0",
        "max_age_ms=0",
        "connect_timeout_ms=0",
    ] {
        let err = open(format!("{}?{bad}", server.url()));
        assert!(
            matches!(&err, BackendError::InvalidUrl { reason, .. } if reason.contains(bad)),
            "{bad}: {err:?}"
        );
    }
    let hint = "if the server requires TLS";
    // Nothing listens: refused, and no TLS hint.
    let err = open(format!(
        "redis://127.0.0.1:{}?connect_timeout_ms=300",
        support::free_port()
    ));
    assert!(matches!(err, BackendError::Unreachable { .. }), "{err:?}");
    assert!(!err.to_string().contains(hint), "{err}");
    // A name that does not resolve: no TLS hint either.
    let err = open("redis://no-such-host.invalid:6379?connect_timeout_ms=300".to_owned());
    assert!(matches!(err, BackendError::Unreachable { .. }), "{err:?}");
    assert!(!err.to_string().contains(hint), "{err}");
    // An HTTP server: not Redis, said so, fatal.
    let http = NotRedis::http();
    let err = open(format!("redis://127.0.0.1:{}", http.port));
    assert!(err.to_string().contains("not a Redis server"), "{err}");
    assert!(err.is_fatal(), "{err:?}");
    // TLS to it: a TLS error, and never the hint to use TLS.
    let err = open(format!(
        "rediss://127.0.0.1:{}?connect_timeout_ms=300",
        http.port
    ));
    assert!(matches!(err, BackendError::Tls { .. }), "{err:?}");
    assert!(!err.to_string().contains(hint), "{err}");
    // A server that never answers: given up after the URL's connect timeout, saying so.
    let silent = NotRedis::silent();
    let err = open(format!(
        "redis://127.0.0.1:{}?connect_timeout_ms=300",
        silent.port
    ));
    assert!(matches!(err, BackendError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("connect_timeout_ms"), "{err}");
    assert!(!err.to_string().contains(hint), "{err}");
    Ok(())
}

/// A misspelt parameter is refused, not ignored.
#[test]
fn an_unknown_redis_parameter_is_refused() {
    let refused = runtime().block_on(Connection::open("redis://127.0.0.1:1?lease_msx=500"));
    let Err(BackendError::InvalidUrl { reason, .. }) = refused else {
        panic!("accepted: {refused:?}");
    };
    assert!(reason.contains("unknown parameter `lease_msx`"), "{reason}");
    assert!(reason.contains("lease_ms"), "{reason}");
}

/// The commit frontier of group `r2.segment-0` on each partition of `r2-in`, sampled while
/// R2 runs; panics if one ever moves backwards.
struct Frontiers {
    last: [Option<(u64, u64, u8)>; 4],
    samples: usize,
}

impl Frontiers {
    const GROUP: &'static str = "r2.segment-0";

    fn new() -> Self {
        Self {
            last: [None; 4],
            samples: 0,
        }
    }

    /// Samples every partition once. The frontier is the oldest pending (read, not
    /// acknowledged) entry, `(ms, seq, 0)`: everything before it is committed; with nothing
    /// pending, the last delivered entry, `(ms, seq, 1)`: it and everything before it is
    /// committed. Both come from one MULTI, so a delivery cannot fall between them.
    fn sample(&mut self, redis: &mut redis::Connection) -> redis::RedisResult<()> {
        for partition in 0..4 {
            let key = format!("r2-in:{partition}");
            if !redis::cmd("EXISTS").arg(&key).query::<bool>(redis)? {
                continue; // nothing sent to it yet
            }
            let groups: Vec<GroupInfo> =
                redis::cmd("XINFO").arg("GROUPS").arg(&key).query(redis)?;
            if Self::ours(&groups).is_none() {
                continue; // the first child has not joined yet
            }
            let (summary, groups): (PendingSummary, Vec<GroupInfo>) = redis::pipe()
                .atomic()
                .cmd("XPENDING")
                .arg(&key)
                .arg(Self::GROUP)
                .cmd("XINFO")
                .arg("GROUPS")
                .arg(&key)
                .query(redis)?;
            let frontier = match summary {
                (0, ..) => {
                    let group = Self::ours(&groups).expect("the group");
                    let delivered: String =
                        redis::from_redis_value_ref(&group["last-delivered-id"])?;
                    let (ms, seq) = parse_id(&delivered);
                    (ms, seq, 1)
                }
                (_, oldest, ..) => {
                    let (ms, seq) = parse_id(&oldest.expect("the oldest pending entry"));
                    (ms, seq, 0)
                }
            };
            let last = &mut self.last[partition];
            assert!(
                last.is_none_or(|last| last <= frontier),
                "partition {partition}: the commit frontier moved back from {last:?} to {frontier:?}"
            );
            *last = Some(frontier);
            self.samples += 1;
        }
        Ok(())
    }

    /// The pipeline's group among a stream's groups (`XINFO GROUPS`).
    fn ours(groups: &[GroupInfo]) -> Option<&GroupInfo> {
        groups.iter().find(|group| {
            group.get("name").is_some_and(|name| {
                redis::from_redis_value_ref::<String>(name).ok().as_deref() == Some(Self::GROUP)
            })
        })
    }
}

/// A field of a stream entry, and its value.
type Field = (String, Vec<u8>);

/// One group of `XINFO GROUPS`.
type GroupInfo = std::collections::HashMap<String, redis::Value>;

/// `XPENDING key group`: the count, the oldest and newest ids, the count by consumer.
type PendingSummary = (u64, Option<String>, Option<String>, redis::Value);

/// `ms-seq` as a pair.
fn parse_id(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').expect("a stream id");
    (ms.parse().expect("ms"), seq.parse().expect("seq"))
}

/// R2 on Redis: two processes run `slow_copy` in one group over 4 partitions while records stream
/// in; one of them is SIGKILLed at a random point, 20 times, and replaced each time. The
/// survivor takes the victim's partitions over when its leases expire, claiming its pending
/// entries. Checked: no record is lost; duplicates are no more than what the victims had
/// read and not committed (each task commits after every batch of at most 16 records, so at
/// most 4 × 16 a kill); the commit frontier of every partition never moves back.
#[test]
fn r2_two_processes_share_partitions_and_one_takes_over_when_the_other_is_killed() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    const KILLS: usize = 20;
    const PARTITIONS: u64 = 4;
    const BATCH: u64 = 16;
    // Short leases, so a survivor takes over within a second or two.
    let url = format!("{}?lease_ms=1000", server.url());
    let child = || {
        std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "r2_child", "--nocapture"])
            .env("DATAFLOW_R2_CHILD", &url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("child process")
    };
    // The processes holding a lease on a partition of the input, by pid (member ids are
    // `pid.instance-member`).
    let holders = || {
        (0..PARTITIONS)
            .map(|p| server.cli(&["GET", &format!("dataflow:lease:r2.segment-0:r2-in:{p}")]))
            .filter_map(|id| id.trim().split_once('.').map(|(pid, _)| pid.to_owned()))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let wait_for = |pids: std::collections::BTreeSet<String>, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while holders() != pids {
            assert!(
                Instant::now() < deadline,
                "{what}: leases held by {:?}",
                holders()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let rt = runtime();
    let connection = rt.block_on(Connection::open(&url))?;
    // Records stream in until the kills are over: 20 every 20 ms (1 000 a second, a fifth of
    // what one process copies), round-robin over the partitions.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let (connection, stop) = (connection.clone(), std::sync::Arc::clone(&stop));
        rt.spawn(async move {
            let mut producer = connection
                .producer::<u64>(TopicSpec::new("r2-in").partitions(4))
                .await?;
            let mut next = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let partition = (next / 20 % PARTITIONS) as u32;
                producer.send_batch(partition, next..next + 20).await?;
                next += 20;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok::<_, BackendError>(next)
        })
    };
    // The frontiers are sampled on a thread of their own until the end.
    let sampling = {
        let (stop, url) = (std::sync::Arc::clone(&stop), server.url());
        std::thread::spawn(move || -> redis::RedisResult<usize> {
            let mut redis = redis::Client::open(url)?.get_connection()?;
            let mut frontiers = Frontiers::new();
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                frontiers.sample(&mut redis)?;
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(frontiers.samples)
        })
    };
    let mut kill_points = KillPoints::from_env();
    let mut pair = [child(), child()];
    let mut killed_mid_batch = 0;
    for round in 0..KILLS {
        let pids = pair.each_ref().map(|c| c.id().to_string());
        wait_for(
            pids.clone().into(),
            "the two processes never shared the partitions",
        );
        // Kill one at a random point (SIGKILL); the other takes its partitions over.
        std::thread::sleep(kill_points.delay(1_000));
        let victim = round % 2;
        pair[victim].kill()?;
        pair[victim].wait()?;
        // Records the victim read and never acknowledged: the survivor must claim them.
        if (0..PARTITIONS).any(|p| {
            let pending = server.cli(&[
                "XPENDING",
                &format!("r2-in:{p}"),
                Frontiers::GROUP,
                "-",
                "+",
                "100",
            ]);
            pending
                .lines()
                .any(|line| line.trim().starts_with(&format!("{}.", pids[victim])))
        }) {
            killed_mid_batch += 1;
        }
        wait_for(
            [pids[1 - victim].clone()].into(),
            "the survivor never took every partition",
        );
        pair[victim] = child();
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let n = rt.block_on(producer)??;
    let samples = sampling.join().expect("the sampler")?;
    let seen = rt.block_on(read_until::<u64>(&connection, "r2-out", |seen| {
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        unique.len() as u64 >= n
    }));
    // The consumers of ended members are deleted when their partitions are taken over: what
    // is left on a stream is the live pair's, and at most a dead member or two whose lease had
    // not quite run out then; not one consumer per kill.
    let consumers: Vec<usize> = (0..PARTITIONS)
        .map(|p| {
            let stream = format!("r2-in:{p}");
            let listed = server.cli(&["XINFO", "CONSUMERS", &stream, Frontiers::GROUP]);
            listed.lines().filter(|line| line.trim() == "name").count()
        })
        .collect();
    for mut process in pair {
        process.kill()?;
        process.wait()?;
    }
    let seen = seen?;
    let unique: std::collections::BTreeSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len() as u64, n, "records lost");
    let duplicates = seen.len() as u64 - n;
    eprintln!(
        "r2: {n} records, {KILLS} kills ({killed_mid_batch} left records read and not \
         committed), {duplicates} duplicates, {samples} frontier samples, consumers left per \
         stream {consumers:?}"
    );
    assert!(
        consumers.iter().all(|&c| c <= 4),
        "consumers of ended members pile up: {consumers:?} per stream"
    );
    assert!(samples > 0, "the commit frontier was never sampled");
    assert!(
        duplicates <= KILLS as u64 * PARTITIONS * BATCH,
        "{duplicates} duplicates: more than the victims can have read and not committed"
    );
    Ok(())
}

/// The child role of the recovery measurements: runs `copy` from `{group}-in` to
/// `{group}-out` in group `{group}` on the URL of `DATAFLOW_RECOVERY_CHILD` until it is
/// killed, or its stdin closes (then it stops cleanly: shutdown, which leaves the group).
#[test]
fn recovery_child() -> Result {
    let (Ok(url), Ok(group)) = (
        std::env::var("DATAFLOW_RECOVERY_CHILD"),
        std::env::var("DATAFLOW_RECOVERY_GROUP"),
    ) else {
        return Ok(()); // only a child process of a recovery test runs this
    };
    runtime().block_on(async {
        let running = Copy::builder()
            .input(format!("{group}-in").as_str())
            .output(format!("{group}-out").as_str())
            .options(PipelineOptions::new().backend(&url).group(&group))
            .start()
            .await?;
        tokio::task::spawn_blocking(|| std::io::Read::read(&mut std::io::stdin(), &mut [0u8]))
            .await??;
        running.shutdown().await?;
        Ok(())
    })
}

/// A process running [`recovery_child`], killed (if still running) and waited for on drop.
struct RecoveryChild(std::process::Child);

impl RecoveryChild {
    fn start(url: &str, group: &str) -> Self {
        let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "recovery_child", "--nocapture"])
            .env("DATAFLOW_RECOVERY_CHILD", url)
            .env("DATAFLOW_RECOVERY_GROUP", group)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("child process");
        Self(child)
    }

    /// SIGKILL.
    fn kill(mut self) -> Result {
        self.0.kill()?;
        self.0.wait()?;
        Ok(())
    }

    /// A clean stop: its stdin closes, it shuts its pipeline down and exits.
    fn stop(mut self) -> Result {
        drop(self.0.stdin.take());
        let status = self.0.wait()?;
        assert!(status.success(), "the child's shutdown failed: {status}");
        Ok(())
    }
}

impl Drop for RecoveryChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 15, item 12: how long a process started after the last one was SIGKILLed (or
/// stopped cleanly) takes to process a record, on Redis. Printed, not asserted (speed belongs
/// in benches); what is checked is that the record comes through. A killed process's
/// partitions wait for its leases to expire (`lease_ms`, 5 s by default); a stopped one
/// releases them as it leaves.
#[test]
fn recovery_after_a_sigkill_or_a_clean_stop_on_redis() -> Result {
    let Some(server) = RedisServer::start() else {
        return Ok(());
    };
    let rt = runtime();
    let connection = rt.block_on(Connection::open(&server.url()))?;
    // Sends `value` to `{group}-in` and returns how long it took to come out.
    let through = |group: &str, value: u64| -> Result<Duration> {
        rt.block_on(async {
            let mut producer = connection.producer::<u64>(format!("{group}-in")).await?;
            let mut reader = connection
                .reader::<u64>(format!("{group}-out"), "rec-reader")
                .await?;
            let started = Instant::now();
            producer.send_batch(0, [value]).await?;
            loop {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "{value} never came"
                );
                let batch = reader.recv_batch(16, Duration::from_millis(50)).await?;
                reader.commit().await?;
                if batch.iter().any(|r| r.value.as_ref().ok() == Some(&value)) {
                    reader.leave().await?;
                    return Ok(started.elapsed());
                }
            }
        })
    };
    for (lease_ms, name) in [(5_000, "default lease"), (1_000, "lease_ms=1000")] {
        let url = format!("{}?lease_ms={lease_ms}", server.url());
        let group = format!("rec-{lease_ms}");
        let first = RecoveryChild::start(&url, &group);
        let warm = through(&group, 1)?;
        first.kill()?;
        let second = RecoveryChild::start(&url, &group);
        let after_kill = through(&group, 2)?;
        second.stop()?; // a clean stop
        let third = RecoveryChild::start(&url, &group);
        let after_stop = through(&group, 3)?;
        third.kill()?;
        eprintln!(
            "recovery on redis ({name}): first record {warm:.2?} after the first start; \
             {after_kill:.2?} after a SIGKILL and a restart; {after_stop:.2?} after a clean \
             stop and a restart"
        );
    }
    Ok(())
}
