//! R1 and R7 of RELIABILITY.md, scaled for CI (set `BROKER_R_SCALE=10` for the full size:
//! R1 with 4 x 250k records).

#[path = "support/checker.rs"]
mod checker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use broker::{Broker, Overflow, RecvError, RecvTimeoutError, Start, TopicConfig};
use checker::{Anomalies, History, Value};

fn scale() -> u64 {
    std::env::var("BROKER_R_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Runs `producers` threads that each send `per_producer` unique values, and returns what was
/// acknowledged where.
fn produce(
    topic: &broker::Topic<Value>,
    producers: u32,
    per_producer: u64,
) -> thread::JoinHandle<std::collections::HashMap<Value, (u32, u64)>> {
    let handles: Vec<_> = (0..producers)
        .map(|id| {
            let producer = topic.producer();
            thread::spawn(move || {
                (0..per_producer)
                    .map(|seq| {
                        let at = producer.send_blocking((id, seq)).expect("topic open");
                        ((id, seq), (at.partition, at.offset))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    thread::spawn(move || {
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("producer panicked"))
            .collect()
    })
}

/// R1: 4 producers into 8 partitions, 3 group members reading and committing: every
/// acknowledged record is read once by the group, offsets dense and monotonic.
#[test]
fn r1_group_reads_every_acknowledged_record_once() {
    let per_producer = 25_000 * scale();
    let total = 4 * per_producer;
    let topic = Broker::new()
        .topic::<Value>(
            "r1",
            TopicConfig::new()
                .partitions(8)
                .capacity(4_096, Overflow::Block),
        )
        .unwrap();
    let group = topic.group("readers").unwrap();
    // All members join before anyone reads, so no rebalance happens mid-run.
    let mut members: Vec<_> = (0..3).map(|_| group.join()).collect();
    members.iter_mut().for_each(|m| m.refresh());
    let read_so_far = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = members
        .into_iter()
        .map(|mut member| {
            let read_so_far = Arc::clone(&read_so_far);
            thread::spawn(move || {
                let mut reads = Vec::new();
                let mut last_commit = BTreeMap::new();
                while read_so_far.load(Ordering::Relaxed) < total {
                    match member.recv_timeout(Duration::from_millis(20)) {
                        Ok(record) => {
                            reads.push((record.partition(), record.offset(), *record.value()));
                            read_so_far.fetch_add(1, Ordering::Relaxed);
                            last_commit.insert(record.partition(), record.position());
                            if reads.len() % 64 == 0 {
                                record.commit().expect("no rebalance happens");
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            // Idle: commit, or the producers wait on us forever (Block).
                            for &position in last_commit.values() {
                                member.commit(position).expect("no rebalance happens");
                            }
                        }
                        Err(err) => panic!("unexpected {err}"),
                    }
                }
                for &position in last_commit.values() {
                    member.commit(position).expect("no rebalance happens");
                }
                // Stay a member until everyone is done, so nothing is rebalanced.
                (reads, member)
            })
        })
        .collect();
    let acked = produce(&topic, 4, per_producer).join().unwrap();
    let mut history = History {
        acked,
        ..History::default()
    };
    let mut members = Vec::new();
    for reader in readers {
        let (reads, member) = reader.join().unwrap();
        history.reads.push(reads);
        history.lagged.push(BTreeMap::new());
        members.push(member);
    }
    assert_eq!(history.acked.len() as u64, total);
    assert_eq!(history.check(), Anomalies::default());
    let read: usize = history.reads.iter().map(Vec::len).sum();
    assert_eq!(
        read as u64, total,
        "each record read exactly once by the group"
    );
    assert_eq!(group.lag(), vec![0; 8], "everything committed");
    assert_eq!(
        topic.end_offsets().iter().sum::<u64>(),
        total,
        "offsets are dense"
    );
}

/// R7: `DropOldest` with a producer much faster than the reader: for every reader,
/// received + sum(Lagged) == sent, exactly; every record received is the one acknowledged at
/// its offset; never a silent skip.
#[test]
fn r7_drop_oldest_accounts_for_every_record() {
    let per_producer = 50_000 * scale();
    let producers = 2;
    let sent = producers as u64 * per_producer;
    let topic = Broker::new()
        .topic::<Value>(
            "r7",
            TopicConfig::new()
                .partitions(2)
                .capacity(256, Overflow::DropOldest),
        )
        .unwrap();
    let readers: Vec<_> = (0..2)
        .map(|slow| {
            let mut consumer = topic.consumer(Start::Earliest).unwrap();
            thread::spawn(move || {
                let mut reads = Vec::new();
                let mut lagged: BTreeMap<u32, u64> = BTreeMap::new();
                loop {
                    match consumer.recv_blocking() {
                        Ok(record) => {
                            reads.push((record.partition(), record.offset(), *record.value()));
                            if slow == 1 && reads.len() % 16 == 0 {
                                // The slow reader: ~10x slower than the producers.
                                thread::sleep(Duration::from_micros(50));
                            }
                        }
                        Err(RecvError::Lagged { partition, skipped }) => {
                            *lagged.entry(partition).or_default() += skipped;
                        }
                        Err(RecvError::Closed) => break,
                        Err(err) => panic!("unexpected {err}"),
                    }
                }
                (reads, lagged)
            })
        })
        .collect();
    let acked = produce(&topic, producers, per_producer).join().unwrap();
    topic.close();
    let mut history = History {
        acked,
        ..History::default()
    };
    for reader in readers {
        let (reads, lagged) = reader.join().unwrap();
        history.reads.push(reads);
        history.lagged.push(lagged);
    }
    for reader in 0..2 {
        assert_eq!(
            history.received_by(reader) + history.skipped_by(reader),
            sent,
            "reader {reader}: received + lagged must equal sent"
        );
    }
    // Each reader on its own: no duplicates, no inconsistencies, no unexplained jumps.
    for reader in 0..2 {
        let single = History {
            acked: history.acked.clone(),
            reads: vec![history.reads[reader].clone()],
            lagged: vec![history.lagged[reader].clone()],
        };
        let anomalies = single.check();
        assert_eq!(
            (
                anomalies.duplicate,
                anomalies.inconsistent_offsets,
                anomalies.nonmonotonic
            ),
            (0, 0, 0),
            "reader {reader}"
        );
    }
    assert!(
        history.skipped_by(1) > 0,
        "the slow reader should have lagged (otherwise this test tests nothing)"
    );
}
