//! File-backed topics: records and committed offsets survive a reopen, a simulated power loss,
//! and a producer killed with SIGKILL (R3); producers share fsyncs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;

use broker::storage::fs::{Crash, SimFs};
use broker::storage::{Durability, Storage};
use broker::{Broker, SendError, Start, TopicConfig};

#[path = "support/small_fs.rs"]
mod small_fs;

fn storage(fs: &SimFs, durability: Durability) -> Storage {
    Storage::dir("/data")
        .file_system(Arc::new(fs.clone()))
        .durability(durability)
}

#[test]
fn records_keys_timestamps_and_commits_survive_a_reopen() {
    let fs = SimFs::new();
    let config = TopicConfig::new().partitions(2);
    let mut written = Vec::new();
    let committed;
    {
        let broker = Broker::new();
        let topic = broker
            .durable_topic::<(String, u64)>(
                "orders",
                config.clone(),
                &storage(&fs, Durability::Always),
            )
            .unwrap();
        let producer = topic.producer();
        for i in 0..300u64 {
            let key = format!("customer-{}", i % 7);
            let at = producer
                .send_keyed_blocking(key.as_bytes(), (key.clone(), i))
                .unwrap();
            written.push((at, key, i));
        }
        let mut member = topic.group("billing").unwrap().join();
        for _ in 0..100 {
            let record = member.recv_blocking().unwrap();
            record.commit().unwrap();
        }
        committed = (0..2)
            .map(|p| topic.group("billing").unwrap().committed(p).unwrap())
            .collect::<Vec<_>>();
        assert_eq!(committed.iter().sum::<u64>(), 100);
    }
    let broker = Broker::new();
    let topic = broker
        .durable_topic::<(String, u64)>("orders", config, &storage(&fs, Durability::Always))
        .unwrap();
    assert_eq!(topic.recovery().len(), 2);
    assert!(
        topic
            .recovery()
            .iter()
            .all(|r| r.truncated.is_none() && r.corrupt.is_none())
    );
    let mut reader = topic.consumer(Start::Earliest).unwrap();
    let mut seen = Vec::new();
    while let Ok(record) = reader.try_recv() {
        assert_eq!(record.key(), Some(record.value().0.as_bytes()));
        seen.push((record.position(), record.value().1));
    }
    seen.sort_unstable();
    let mut expected: Vec<_> = written.iter().map(|(at, _, i)| (*at, *i)).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected, "every record, at its offset");
    let group = topic.group("billing").unwrap();
    assert_eq!(
        (0..2)
            .map(|p| group.committed(p).unwrap())
            .collect::<Vec<_>>(),
        committed
    );
    let mut member = group.join();
    let first = member.recv_blocking().unwrap();
    assert_eq!(
        first.offset(),
        committed[first.partition() as usize],
        "resumes from the commit"
    );
    // Appends continue after the recovered offsets.
    let next = topic
        .producer()
        .send_to_blocking(0, ("x".into(), 1))
        .unwrap();
    assert_eq!(
        next.offset,
        written
            .iter()
            .filter(|(at, _, _)| at.partition == 0)
            .count() as u64
    );
}

#[test]
fn with_always_every_acknowledged_record_survives_a_power_loss() {
    let fs = SimFs::new();
    {
        let broker = Broker::new();
        let topic = broker
            .durable_topic::<u64>("t", TopicConfig::new(), &storage(&fs, Durability::Always))
            .unwrap();
        for i in 0..200 {
            topic.producer().send_blocking(i).unwrap();
        }
        fs.crash(Crash::DropUnsynced);
    }
    let broker = Broker::new();
    let topic = broker
        .durable_topic::<u64>("t", TopicConfig::new(), &storage(&fs, Durability::Always))
        .unwrap();
    let mut reader = topic.consumer(Start::Earliest).unwrap();
    for i in 0..200 {
        let record = reader.try_recv().unwrap();
        assert_eq!((record.offset(), *record.value()), (i, i));
    }
}

#[test]
fn concurrent_producers_share_fsyncs() {
    let fs = SimFs::new();
    let broker = Broker::new();
    let topic = broker
        .durable_topic::<u64>("t", TopicConfig::new(), &storage(&fs, Durability::Always))
        .unwrap();
    fs.set_sync_delay(std::time::Duration::from_millis(1));
    let before = fs.syncs();
    let handles: Vec<_> = (0..4)
        .map(|id| {
            let producer = topic.producer();
            thread::spawn(move || {
                for i in 0..250 {
                    producer.send_blocking(id * 1_000 + i).unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let syncs = fs.syncs() - before;
    assert_eq!(topic.end_offsets(), vec![1_000]);
    // While one fsync (1 ms here) runs, the other producers' appends queue up, and the next
    // fsync covers them all.
    assert!(
        syncs < 1_000,
        "1000 acknowledged appends from 4 producers took {syncs} fsyncs"
    );
}

#[test]
fn reopening_with_another_value_type_fails_to_decode_clearly() {
    let fs = SimFs::new();
    {
        let broker = Broker::new();
        let topic = broker
            .durable_topic::<String>("t", TopicConfig::new(), &storage(&fs, Durability::Always))
            .unwrap();
        topic.producer().send_blocking("hello".into()).unwrap();
    }
    let err = Broker::new()
        .durable_topic::<u8>("t", TopicConfig::new(), &storage(&fs, Durability::Always))
        .unwrap_err();
    assert!(err.to_string().contains("offset 0"), "{err}");
}

/// The durability a child producer runs with: `R3_DURABILITY` = `always` (the default),
/// `never`, or an interval in milliseconds.
fn child_durability() -> Durability {
    match std::env::var("R3_DURABILITY").as_deref() {
        Ok("never") => Durability::Never,
        Ok(ms) if ms.parse::<u64>().is_ok() => {
            Durability::Interval(std::time::Duration::from_millis(ms.parse().unwrap()))
        }
        _ => Durability::Always,
    }
}

/// The child side of R3: appends until killed, printing each acknowledged offset.
#[test]
#[ignore = "run by the SIGKILL tests below"]
fn r3_child_producer() {
    let Ok(dir) = std::env::var("R3_DIR") else {
        return;
    };
    let broker = Broker::new();
    let topic = broker
        .durable_topic::<u64>(
            "r3",
            TopicConfig::new(),
            &Storage::dir(&dir).durability(child_durability()),
        )
        .unwrap();
    let producer = topic.producer();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let at = producer.send_blocking(i).unwrap();
        use std::io::Write;
        writeln!(out, "ack {} {i}", at.offset).unwrap();
        out.flush().unwrap();
    }
}

/// Kills a child producer with SIGKILL after a random number of acknowledgements, `rounds`
/// times, appending to the same files; after each round, every acknowledged record is there,
/// valid and in order, and at most a torn tail is cut.
fn kill_rounds(durability: &str, rounds: usize, mut seed: u64) {
    let dir = std::env::temp_dir().join(format!("broker-r3-{durability}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut acked_total = 0u64;
    let mut acked_values = std::collections::HashMap::new();
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = 50 + seed % 400;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "r3_child_producer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("R3_DIR", &dir)
            .env("R3_DURABILITY", durability)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let mut parts = line.split_whitespace();
            if parts.next() != Some("ack") {
                continue;
            }
            let offset: u64 = parts.next().unwrap().parse().unwrap();
            let value: u64 = parts.next().unwrap().parse().unwrap();
            acked_values.insert(offset, value);
            acked.push(offset);
            if acked.len() as u64 >= kill_after {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(
            !acked.is_empty(),
            "{durability} round {round}: the child acknowledged nothing"
        );
        acked_total = acked_total.max(*acked.last().unwrap() + 1);
        let broker = Broker::new();
        let topic = broker
            .durable_topic::<u64>("r3", TopicConfig::new(), &Storage::dir(&dir))
            .unwrap();
        let report = &topic.recovery()[0];
        assert!(
            report.corrupt.is_none(),
            "{durability} round {round}: {report:?}"
        );
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let mut expected_offset = 0;
        while let Ok(record) = reader.try_recv() {
            assert_eq!(record.offset(), expected_offset, "dense and in order");
            if let Some(value) = acked_values.get(&record.offset()) {
                assert_eq!(
                    record.value(),
                    value,
                    "{durability} round {round}: offset {}",
                    record.offset()
                );
            }
            expected_offset += 1;
        }
        assert!(
            expected_offset >= acked_total,
            "{durability} round {round}: {acked_total} acknowledged, {expected_offset} recovered"
        );
    }
    assert!(Path::new(&dir).exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// R3: `Always`, 10 rounds.
#[test]
fn r3_a_producer_killed_at_random_loses_no_acknowledged_record() {
    kill_rounds("always", 10, 0x2545_f491_4f6c_dd1d);
}

/// Issue 11, items 6 and 7: with `Never` and `Interval`, an acknowledgement means the record
/// reached the operating system, so a killed process loses none of them either (only a power
/// loss can).
#[test]
fn with_never_or_an_interval_a_killed_producer_loses_no_acknowledged_record() {
    kill_rounds("never", 5, 0x9e37_79b9_7f4a_7c15);
    kill_rounds("50", 5, 0x1234_5678_9abc_def0);
}

/// Issue 11, item 10 (R11 on a real file system): a 1 MiB file system fills up under a
/// file-backed topic, at every durability level. Appends fail with the value given back and
/// keep nothing partial; every acknowledged record stays, in memory and on disk; once space
/// is freed, appends go on in place (no reopen).
#[test]
fn r11_a_real_full_disk_loses_nothing_acknowledged_and_appends_resume_in_place() {
    let levels = [
        ("always", Durability::Always),
        (
            "interval",
            Durability::Interval(std::time::Duration::from_millis(10)),
        ),
        ("never", Durability::Never),
    ];
    for (name, durability) in levels {
        let Some(disk) = small_fs::SmallFs::mount_or_skip(&format!("full-{name}"), 1 << 20) else {
            return;
        };
        // Room to free later.
        let ballast = disk.dir().join("ballast");
        std::fs::write(&ballast, vec![0u8; 256 << 10]).unwrap();
        let storage = Storage::dir(disk.dir().join("data")).durability(durability);
        let payload = |i: u64| (i, vec![i as u8; 1_000]);
        let mut acked = Vec::new();
        {
            let broker = Broker::new();
            let topic = broker
                .durable_topic::<(u64, Vec<u8>)>("full", TopicConfig::new(), &storage)
                .unwrap();
            let producer = topic.producer();
            let mut failures = 0;
            for i in 0.. {
                match producer.send_blocking(payload(i)) {
                    Ok(at) => {
                        assert_eq!(at.offset, acked.len() as u64, "{name}: dense offsets");
                        acked.push(i);
                    }
                    Err(SendError::Storage { value, message }) => {
                        assert_eq!(value, payload(i), "{name}: the value comes back");
                        assert!(message.contains("space"), "{name}: {message}");
                        failures += 1;
                        if failures == 3 {
                            break;
                        }
                    }
                    Err(other) => panic!("{name}: {other:?}"),
                }
            }
            assert!(acked.len() > 100, "{name}: {} acknowledged", acked.len());
            let mut reader = topic.consumer(Start::Earliest).unwrap();
            for &i in &acked {
                assert_eq!(reader.try_recv().unwrap().value().0, i, "{name}");
            }
            assert!(
                reader.try_recv().is_err(),
                "{name}: nothing partial is visible"
            );
            std::fs::remove_file(&ballast).unwrap();
            for i in 1_000_000..1_000_020 {
                producer.send_blocking(payload(i)).unwrap();
                acked.push(i);
            }
            topic.sync().unwrap();
        }
        let broker = Broker::new();
        let topic = broker
            .durable_topic::<(u64, Vec<u8>)>("full", TopicConfig::new(), &storage)
            .unwrap();
        let report = &topic.recovery()[0];
        assert!(
            report.truncated.is_none() && report.corrupt.is_none(),
            "{name}: {report:?}"
        );
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        for &i in &acked {
            assert_eq!(reader.try_recv().unwrap().value(), &payload(i), "{name}");
        }
        assert!(
            reader.try_recv().is_err(),
            "{name}: exactly the acknowledged records"
        );
    }
}

/// Issue 11, item 11: an async send to a file-backed topic does its file work off the
/// executor's thread. On a single-threaded runtime, while the (simulated) disk holds a send's
/// write or fsync, another task of the same runtime still runs, and is the one that lets the
/// disk go on. Were the send blocking the thread, nobody could, and the disk would go on by
/// its own time limit (which the test then reports).
#[test]
fn an_async_send_to_a_file_backed_topic_never_blocks_the_executor() {
    let levels = [
        Durability::Always,
        Durability::Interval(std::time::Duration::from_secs(3600)),
        Durability::Never,
    ];
    for durability in levels {
        let fs = SimFs::new();
        let broker = Broker::new();
        let topic = broker
            .durable_topic::<u64>("t", TopicConfig::new(), &storage(&fs, durability))
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        fs.hold();
        let producer = topic.producer();
        rt.block_on(async {
            let one = tokio::spawn({
                let producer = producer.clone();
                async move { producer.send(7).await }
            });
            let batch = tokio::spawn({
                let producer = producer.clone();
                async move { producer.send_batch(0, [8, 9]).await }
            });
            for _ in 0..1_000_000 {
                if fs.waiting() > 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            fs.release();
            let one = one.await.unwrap().unwrap();
            let batch = batch.await.unwrap().unwrap().unwrap();
            assert_eq!((one.offset, batch.offset), (0, 2), "{durability:?}");
        });
        assert!(
            !fs.held_too_long(),
            "{durability:?}: a send blocked the runtime's only thread on the disk"
        );
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let values: Vec<u64> = std::iter::from_fn(|| reader.try_recv().ok().map(|r| *r)).collect();
        assert_eq!(values, [7, 8, 9], "{durability:?}");
    }
}

/// Async sends to a file-backed topic bounded with `Overflow::Block` wait for room without
/// blocking, and many concurrent async producers share the writer's fsyncs.
#[test]
fn async_sends_to_a_file_backed_topic_wait_for_room_and_share_fsyncs() {
    let fs = SimFs::new();
    let broker = Broker::new();
    let topic = broker
        .durable_topic::<u64>(
            "t",
            TopicConfig::new().capacity(64, broker::Overflow::Block),
            &storage(&fs, Durability::Always),
        )
        .unwrap();
    fs.set_sync_delay(std::time::Duration::from_millis(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut reader = topic.consumer(Start::Earliest).unwrap();
    let before = fs.syncs();
    let senders: Vec<_> = (0..8u64)
        .map(|id| {
            let producer = topic.producer();
            rt.spawn(async move {
                for i in 0..100 {
                    producer.send(id * 1_000 + i).await.unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u64; 8];
    for _ in 0..800 {
        let value = *reader.recv_blocking().unwrap();
        let (id, i) = ((value / 1_000) as usize, value % 1_000);
        assert_eq!(i, next[id], "each producer's order is kept");
        next[id] += 1;
    }
    for sender in senders {
        rt.block_on(sender).unwrap();
    }
    assert_eq!(topic.end_offsets(), vec![800]);
    let syncs = fs.syncs() - before;
    assert!(syncs < 800, "800 acknowledged appends took {syncs} fsyncs");
}

/// R21 (issue 11, items 8 and 9), as readers see it: a byte flipped in the active segment and
/// a closed segment deleted. A reader gets every valid record, exactly as written, and a
/// `Lagged` for each run of lost ones; the counts add up to what was written; appends go on
/// after the last offset ever given.
#[test]
fn r21_readers_get_every_valid_record_and_a_lag_for_each_lost_run() {
    // Small segments, and segments larger than a memory block (so that the deleted one is a
    // hole spanning whole blocks).
    r21_readers(2_048, 300);
    r21_readers(128 << 10, 12_000);
}

fn r21_readers(segment_bytes: u64, n: u64) {
    use broker::storage::StorageConfig;
    use broker::storage::fs::Fs;
    let fs = SimFs::new();
    let storage = Storage::dir("/data")
        .file_system(Arc::new(fs.clone()))
        .config(StorageConfig {
            segment_bytes,
            ..StorageConfig::default()
        });
    {
        let broker = Broker::new();
        let topic = broker
            .durable_topic::<u64>("t", TopicConfig::new(), &storage)
            .unwrap();
        let producer = topic.producer();
        for i in 0..n {
            producer.send_blocking(i).unwrap();
        }
    }
    let segments: Vec<_> = fs
        .paths()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(segments.len() >= 3, "{segments:?}");
    fs.remove(&segments[1]).unwrap();
    let active = segments.last().unwrap();
    let len = fs.read(active).unwrap().len();
    fs.corrupt(active, len / 2, 0x10);

    let broker = Broker::new();
    let topic = broker
        .durable_topic::<u64>("t", TopicConfig::new(), &storage)
        .unwrap();
    let report = &topic.recovery()[0];
    assert!(report.corrupt.is_some(), "{report:?}");
    assert!(
        report.lost.len() >= 2,
        "the deleted segment and the damaged frame: {report:?}"
    );
    let lost = report.lost_records();
    let mut reader = topic.consumer(Start::Earliest).unwrap();
    let (mut received, mut skipped) = (0u64, 0u64);
    loop {
        match reader.try_recv() {
            Ok(record) => {
                assert_eq!(*record.value(), record.offset(), "exactly as written");
                received += 1;
            }
            Err(broker::TryRecvError::Lagged { skipped: n, .. }) => skipped += n,
            Err(broker::TryRecvError::Empty) => break,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((received + skipped, skipped), (n, lost));
    assert_eq!(topic.end_offsets(), vec![n]);
    let next = topic.producer().send_blocking(n).unwrap();
    assert_eq!(next.offset, n, "appends go on after every offset given");
}
