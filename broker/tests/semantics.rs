//! The broker's promises, one test per behaviour.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use broker::{
    Broker, CommitError, NameError, Overflow, Position, RecvError, RecvTimeoutError, SeekError,
    SendError, Start, TopicConfig, TopicError, TryRecvError, TrySendError,
};

fn topic<T: Send + Sync + 'static>(config: TopicConfig) -> broker::Topic<T> {
    Broker::new().topic::<T>("t", config).unwrap()
}

#[test]
fn offsets_are_dense_from_zero_and_order_is_kept_within_a_partition() {
    let t = topic::<u64>(TopicConfig::new().block_size(4));
    let p = t.producer();
    for i in 0..100 {
        let at = p.send_blocking(i).unwrap();
        assert_eq!(
            at,
            Position {
                partition: 0,
                offset: i
            }
        );
    }
    let mut r = t.consumer(Start::Earliest).unwrap();
    for i in 0..100 {
        let rec = r.recv_blocking().unwrap();
        assert_eq!((rec.offset(), *rec.value()), (i, i));
    }
    assert_eq!(r.try_recv().unwrap_err(), TryRecvError::Empty);
    assert_eq!(t.end_offsets(), vec![100]);
}

#[test]
fn concurrent_producers_lose_nothing_and_keep_each_producers_order() {
    let t = topic::<(u32, u32)>(TopicConfig::new().block_size(8));
    let handles: Vec<_> = (0..4)
        .map(|id| {
            let p = t.producer();
            thread::spawn(move || {
                for seq in 0..5_000 {
                    p.send_blocking((id, seq)).unwrap();
                }
            })
        })
        .collect();
    let mut r = t.consumer(Start::Earliest).unwrap();
    let mut next = [0u32; 4];
    for offset in 0..20_000 {
        let rec = r.recv_blocking().unwrap();
        assert_eq!(rec.offset(), offset);
        let (id, seq) = *rec.value();
        assert_eq!(seq, next[id as usize], "producer {id} out of order");
        next[id as usize] += 1;
    }
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(next, [5_000; 4]);
}

#[test]
fn every_reader_sees_every_record_fan_out() {
    let t = topic::<u32>(TopicConfig::new().block_size(16));
    let readers: Vec<_> = (0..8)
        .map(|_| t.consumer(Start::Earliest).unwrap())
        .collect();
    let handles: Vec<_> = readers
        .into_iter()
        .map(|mut r| {
            thread::spawn(move || {
                (0..1_000)
                    .map(|_| *r.recv_blocking().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let p = t.producer();
    for i in 0..1_000 {
        p.send_blocking(i).unwrap();
    }
    for h in handles {
        assert_eq!(h.join().unwrap(), (0..1_000).collect::<Vec<_>>());
    }
}

#[test]
fn keyed_sends_go_to_the_same_partition_and_keep_the_key() {
    let t = topic::<u32>(TopicConfig::new().partitions(8));
    let p = t.producer();
    let first = p.send_keyed_blocking(b"user-42", 1).unwrap();
    for i in 2..20 {
        assert_eq!(
            p.send_keyed_blocking(b"user-42", i).unwrap().partition,
            first.partition
        );
    }
    assert_eq!(first.partition, broker::partition_for_key(b"user-42", 8));
    let mut r = t
        .partition_consumer(first.partition, Start::Earliest)
        .unwrap();
    let rec = r.recv_blocking().unwrap();
    assert_eq!(rec.key(), Some(&b"user-42"[..]));
}

#[test]
fn unkeyed_sends_spread_round_robin() {
    let t = topic::<u32>(TopicConfig::new().partitions(4));
    let p = t.producer();
    for i in 0..40 {
        p.send_blocking(i).unwrap();
    }
    assert_eq!(t.end_offsets(), vec![10; 4]);
}

#[test]
fn send_to_a_missing_partition_gives_the_value_back() {
    let t = topic::<String>(TopicConfig::new().partitions(2));
    let err = t
        .producer()
        .send_to_blocking(5, "v".to_owned())
        .unwrap_err();
    assert!(matches!(
        err,
        SendError::NoSuchPartition {
            partition: 5,
            partitions: 2,
            ..
        }
    ));
    assert_eq!(err.into_inner().as_deref(), Some("v"));
}

#[test]
fn async_reader_parks_and_is_woken_by_a_later_send() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = topic::<u32>(TopicConfig::new());
    let mut r = t.consumer(Start::Earliest).unwrap();
    let reader = rt.spawn(async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(*r.recv().await.unwrap());
        }
        got
    });
    let p = t.producer();
    rt.block_on(async {
        for i in 0..3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            p.send(i).await.unwrap();
        }
    });
    assert_eq!(rt.block_on(reader).unwrap(), vec![0, 1, 2]);
}

#[test]
fn blocking_reader_is_woken_by_a_later_send() {
    let t = topic::<u32>(TopicConfig::new());
    let mut r = t.consumer(Start::Earliest).unwrap();
    let h = thread::spawn(move || *r.recv_blocking().unwrap());
    thread::sleep(Duration::from_millis(20));
    t.producer().send_blocking(7).unwrap();
    assert_eq!(h.join().unwrap(), 7);
}

#[test]
fn recv_timeout_times_out_on_an_empty_topic() {
    let t = topic::<u32>(TopicConfig::new());
    let mut r = t.consumer(Start::Earliest).unwrap();
    assert_eq!(
        r.recv_timeout(Duration::from_millis(10)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
}

#[test]
fn readers_start_at_earliest_latest_offset_or_timestamp() {
    let t = topic::<u32>(TopicConfig::new().block_size(4));
    let p = t.producer();
    for i in 0..10 {
        p.send_blocking(i).unwrap();
    }
    thread::sleep(Duration::from_millis(5));
    let cut = SystemTime::now();
    thread::sleep(Duration::from_millis(5));
    for i in 10..20 {
        p.send_blocking(i).unwrap();
    }
    let first = |start| *t.consumer(start).unwrap().recv_blocking().unwrap();
    assert_eq!(first(Start::Earliest), 0);
    assert_eq!(first(Start::Offset(13)), 13);
    assert_eq!(first(Start::Timestamp(cut)), 10);
    let mut latest = t.consumer(Start::Latest).unwrap();
    assert_eq!(latest.try_recv().unwrap_err(), TryRecvError::Empty);
    p.send_blocking(20).unwrap();
    assert_eq!(*latest.recv_blocking().unwrap(), 20);
    assert!(matches!(
        t.consumer(Start::Offset(99)).unwrap_err(),
        SeekError::OffsetOutOfRange {
            offset: 99,
            earliest: 0,
            latest: 21,
            ..
        }
    ));
}

#[test]
fn seek_moves_a_reader_anywhere_while_reading() {
    let t = topic::<u32>(TopicConfig::new().block_size(4));
    let p = t.producer();
    for i in 0..10 {
        p.send_blocking(i).unwrap();
    }
    let mut r = t.consumer(Start::Earliest).unwrap();
    assert_eq!(*r.recv_blocking().unwrap(), 0);
    r.seek(Start::Offset(7)).unwrap();
    assert_eq!(*r.recv_blocking().unwrap(), 7);
    r.seek(Start::Earliest).unwrap();
    assert_eq!(*r.recv_blocking().unwrap(), 0);
    r.seek(Start::Latest).unwrap();
    assert_eq!(r.position(0), Some(10));
    r.seek_partition(0, Start::Offset(9)).unwrap();
    assert_eq!(*r.recv_blocking().unwrap(), 9);
    assert!(matches!(
        r.seek_partition(3, Start::Earliest),
        Err(SeekError::NoSuchPartition { .. })
    ));
}

#[test]
fn drop_oldest_reports_exact_lag_then_continues_from_oldest_kept() {
    let t = topic::<u64>(TopicConfig::new().capacity(16, Overflow::DropOldest));
    let mut r = t.consumer(Start::Earliest).unwrap();
    let p = t.producer();
    for i in 0..100 {
        p.send_blocking(i).unwrap();
    }
    let oldest = t.start_offsets()[0];
    assert!(oldest > 0 && 100 - oldest >= 16, "kept {}", 100 - oldest);
    assert_eq!(
        r.recv_blocking().unwrap_err(),
        RecvError::Lagged {
            partition: 0,
            skipped: oldest
        }
    );
    let mut received = 0;
    while let Ok(rec) = r.try_recv() {
        assert_eq!(*rec.value(), oldest + received);
        received += 1;
    }
    assert_eq!(oldest + received, 100);
}

/// Issue 11, item 3: a `DropOldest` partition holds its capacity within one block (an eighth
/// of the capacity), not up to twice it, and lag counts only what can still be read.
#[test]
fn drop_oldest_holds_its_capacity_within_a_block_and_lag_counts_only_what_is_kept() {
    for (capacity, block) in [(1_000u64, 64u64), (10, 4), (65_536, 1_024)] {
        let t = topic::<u64>(TopicConfig::new().capacity(capacity, Overflow::DropOldest));
        let r = t.consumer(Start::Earliest).unwrap();
        let g = t.group("g").unwrap();
        let p = t.producer();
        for i in 0..100_000 {
            p.send_blocking(i).unwrap();
            let kept = t.end_offsets()[0] - t.start_offsets()[0];
            assert!(kept < capacity + block, "capacity {capacity}: kept {kept}");
        }
        let kept = t.end_offsets()[0] - t.start_offsets()[0];
        assert!(kept >= capacity, "capacity {capacity}: kept {kept}");
        assert_eq!(r.lag(), kept, "a reader's lag is what it can still read");
        assert_eq!(g.lag(), vec![kept], "a group's lag too");
        let mut m = g.join();
        m.refresh();
        assert_eq!(m.lag(), kept);
    }
}

#[test]
fn block_never_loses_and_makes_the_producer_wait() {
    let t = topic::<u64>(TopicConfig::new().capacity(8, Overflow::Block));
    let mut r = t.consumer(Start::Earliest).unwrap();
    let p = t.producer();
    for i in 0..8 {
        p.try_send(i).unwrap();
    }
    assert!(matches!(p.try_send(8), Err(TrySendError::Full(8))));
    let producer = thread::spawn(move || {
        for i in 8..10_000 {
            p.send_blocking(i).unwrap();
        }
    });
    for i in 0..10_000 {
        assert_eq!(*r.recv_blocking().unwrap(), i);
    }
    producer.join().unwrap();
}

/// Issue 11, item 2: `Block` bounds a log, not a queue: records every reader has passed stay
/// replayable up to the capacity.
#[test]
fn block_keeps_the_newest_capacity_records_replayable_after_every_reader_read_them() {
    let t = topic::<u64>(TopicConfig::new().capacity(1_000_000, Overflow::Block));
    let mut r = t.consumer(Start::Earliest).unwrap();
    let p = t.producer();
    for i in 0..5_200 {
        p.send_blocking(i).unwrap();
        assert_eq!(*r.recv_blocking().unwrap(), i);
    }
    assert_eq!(t.start_offsets(), vec![0]);
    let mut late = t.consumer(Start::Earliest).unwrap();
    assert_eq!(late.try_recv().unwrap().offset(), 0, "no `Lagged`, from 0");
    r.seek(Start::Offset(0)).unwrap();
    assert_eq!(*r.try_recv().unwrap(), 0);

    // A small capacity, many blocks: at least the newest `capacity` records stay.
    let t = topic::<u64>(
        TopicConfig::new()
            .capacity(100, Overflow::Block)
            .block_size(8),
    );
    let mut r = t.consumer(Start::Earliest).unwrap();
    let p = t.producer();
    for i in 0..1_000 {
        p.send_blocking(i).unwrap();
        assert_eq!(*r.recv_blocking().unwrap(), i);
    }
    let start = t.start_offsets()[0];
    assert!(start <= 900 && start > 0, "kept from {start}");
    let mut late = t.consumer(Start::Offset(900)).unwrap();
    assert_eq!(*late.try_recv().unwrap(), 900);
}

#[test]
fn block_waits_for_a_group_by_its_committed_offset() {
    let t = topic::<u64>(TopicConfig::new().capacity(4, Overflow::Block));
    let g = t.group("g").unwrap();
    let p = t.producer();
    for i in 0..4 {
        p.try_send(i).unwrap();
    }
    assert!(matches!(p.try_send(4), Err(TrySendError::Full(_))));
    let mut m = g.join();
    let rec = m.recv_blocking().unwrap();
    assert!(
        matches!(p.try_send(4), Err(TrySendError::Full(_))),
        "reading is not committing"
    );
    rec.commit().unwrap();
    p.try_send(4).unwrap();
}

#[test]
fn closing_fails_sends_with_the_value_and_lets_readers_drain() {
    let t = topic::<String>(TopicConfig::new());
    let p = t.producer();
    p.send_blocking("a".into()).unwrap();
    let mut r = t.consumer(Start::Earliest).unwrap();
    t.close();
    assert!(t.is_closed());
    match p.send_blocking("b".into()) {
        Err(SendError::Closed(v)) => assert_eq!(v, "b"),
        other => panic!("expected closed, got {other:?}"),
    }
    assert_eq!(r.recv_blocking().unwrap().value(), "a");
    assert_eq!(r.recv_blocking().unwrap_err(), RecvError::Closed);
}

#[test]
fn closing_wakes_a_parked_reader() {
    let t = topic::<u32>(TopicConfig::new());
    let mut r = t.consumer(Start::Earliest).unwrap();
    let h = thread::spawn(move || r.recv_blocking().map(|v| *v));
    thread::sleep(Duration::from_millis(20));
    t.close();
    assert_eq!(h.join().unwrap(), Err(RecvError::Closed));
}

#[test]
fn closing_wakes_a_producer_waiting_for_room() {
    let t = topic::<u32>(TopicConfig::new().capacity(1, Overflow::Block));
    let _r = t.consumer(Start::Earliest).unwrap();
    let p = t.producer();
    p.send_blocking(0).unwrap();
    let h = thread::spawn(move || p.send_blocking(1));
    thread::sleep(Duration::from_millis(20));
    t.close();
    assert!(matches!(h.join().unwrap(), Err(SendError::Closed(1))));
}

#[test]
fn topic_names_are_validated_like_kafka() {
    let b = Broker::new();
    let long = "x".repeat(250);
    let cases: [(&str, NameError); 7] = [
        ("", NameError::Empty),
        (".", NameError::DotOnly),
        ("..", NameError::DotOnly),
        (&long, NameError::TooLong { len: 250 }),
        ("../x", NameError::InvalidChar { ch: '/', index: 2 }),
        ("a b", NameError::InvalidChar { ch: ' ', index: 1 }),
        ("__internal", NameError::Reserved),
    ];
    for (name, expected) in cases {
        match b.topic::<u32>(name, TopicConfig::new()) {
            Err(TopicError::InvalidName { source, .. }) => assert_eq!(source, expected, "{name:?}"),
            other => panic!("{name:?} gave {other:?}"),
        }
    }
    assert!(b.topic::<u32>(&"y".repeat(249), TopicConfig::new()).is_ok());
    assert!(b.topic::<u32>("orders.v2_eu-1", TopicConfig::new()).is_ok());
    assert!(b.topic::<u32>("bad\0", TopicConfig::new()).is_err());
    assert!(b.topic::<u32>("caf\u{e9}", TopicConfig::new()).is_err());
    assert!(
        b.internal_topic::<u32>("__repartition", TopicConfig::new())
            .is_ok()
    );
    assert!(
        b.internal_topic::<u32>("public", TopicConfig::new())
            .is_err()
    );
}

#[test]
fn reopening_with_another_type_or_partition_count_is_an_error() {
    let b = Broker::new();
    b.topic::<u32>("t", TopicConfig::new().partitions(2))
        .unwrap();
    assert!(matches!(
        b.topic::<String>("t", TopicConfig::new().partitions(2)),
        Err(TopicError::TypeMismatch { .. })
    ));
    assert!(matches!(
        b.topic::<u32>("t", TopicConfig::new().partitions(3)),
        Err(TopicError::PartitionMismatch {
            existing: 2,
            requested: 3,
            ..
        })
    ));
    let again = b
        .topic::<u32>("t", TopicConfig::new().partitions(2))
        .unwrap();
    again.producer().send_blocking(1).unwrap();
    assert_eq!(
        b.open_topic::<u32>("t")
            .unwrap()
            .end_offsets()
            .iter()
            .sum::<u64>(),
        1
    );
    assert!(matches!(
        b.open_topic::<u32>("nope"),
        Err(TopicError::NotFound { .. })
    ));
}

/// Issue 11, item 4: reopening a topic with other settings is an error, not a topic with the
/// old settings.
#[test]
fn reopening_with_other_settings_is_an_error() {
    let b = Broker::new();
    let config = TopicConfig::new()
        .partitions(2)
        .capacity(100, Overflow::Block);
    b.topic::<u32>("t", config.clone()).unwrap();
    b.topic::<u32>("t", config.clone()).unwrap();
    let other_settings = [
        ("capacity", config.clone().capacity(200, Overflow::Block)),
        (
            "capacity",
            config.clone().capacity(100, Overflow::DropOldest),
        ),
        ("capacity", TopicConfig::new().partitions(2)),
        ("retain_bytes", config.clone().retain_bytes(1 << 20)),
        (
            "retain_age",
            config.clone().retain_age(Duration::from_secs(60)),
        ),
        ("block_size", config.clone().block_size(4)),
    ];
    for (expected, other) in other_settings {
        match b.topic::<u32>("t", other.clone()) {
            Err(TopicError::ConfigMismatch { setting, .. }) => {
                assert_eq!(setting, expected, "{other:?}")
            }
            other => panic!("{expected}: {other:?}"),
        }
    }
    let err = b
        .topic::<u32>("t", config.clone().capacity(200, Overflow::Block))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "topic `t` has capacity 100 (Block), not 200 (Block)"
    );
    assert_eq!(b.open_topic::<u32>("t").unwrap().config(), &config);
}

/// Issue 11, item 4: after `Broker::close`, joins and commits fail as sends do.
#[test]
fn after_the_broker_closes_joins_and_commits_fail_like_sends() {
    let b = Broker::new();
    let t = b.topic::<u32>("t", TopicConfig::new()).unwrap();
    let p = t.producer();
    p.send_blocking(1).unwrap();
    p.send_blocking(2).unwrap();
    let g = t.group("g").unwrap();
    let mut m = g.join();
    let record = m.recv_blocking().unwrap();
    b.close();
    assert!(matches!(p.send_blocking(3), Err(SendError::Closed(3))));
    assert_eq!(record.commit(), Err(CommitError::BrokerClosed));
    assert_eq!(m.commit_offset(0, 1), Err(CommitError::BrokerClosed));
    assert_eq!(g.committed(0), Some(0));
    assert_eq!(t.group("g").unwrap_err(), broker::GroupError::BrokerClosed);
    assert_eq!(
        t.group("other").unwrap_err(),
        broker::GroupError::BrokerClosed
    );
    let generation = g.generation();
    let mut late = g.join();
    assert_eq!(late.try_recv().unwrap_err(), TryRecvError::Closed);
    assert_eq!(late.recv_blocking().unwrap_err(), RecvError::Closed);
    assert_eq!(
        (g.members(), g.generation()),
        (1, generation),
        "not counted"
    );
    drop(late);
    assert_eq!((g.members(), g.generation()), (1, generation));
    // The member that was there reads what was appended, then `Closed`.
    assert_eq!(*m.recv_blocking().unwrap().value(), 2);
    assert_eq!(m.recv_blocking().unwrap_err(), RecvError::Closed);
}

/// Closing a topic (not the broker) lets members drain and commit what they read.
#[test]
fn after_a_topic_closes_members_drain_and_commit() {
    let t = topic::<u32>(TopicConfig::new());
    t.producer().send_blocking(1).unwrap();
    let g = t.group("g").unwrap();
    let mut m = g.join();
    t.close();
    m.recv_blocking().unwrap().commit().unwrap();
    assert_eq!(g.committed(0), Some(1));
    assert_eq!(m.recv_blocking().unwrap_err(), RecvError::Closed);
}

/// Issue 11, item 5: `create_topic` fails on an existing topic, `open_topic` on a missing one,
/// so that a typo in a name is an error, not a new empty topic.
#[test]
fn create_topic_fails_on_an_existing_name_and_open_topic_on_a_missing_one() {
    let b = Broker::new();
    let t = b.create_topic::<u32>("orders", TopicConfig::new()).unwrap();
    t.producer().send_blocking(1).unwrap();
    assert_eq!(
        b.create_topic::<u32>("orders", TopicConfig::new())
            .unwrap_err(),
        TopicError::AlreadyExists {
            name: "orders".into()
        }
    );
    assert_eq!(
        b.open_topic::<u32>("orders").unwrap().end_offsets(),
        vec![1]
    );
    assert_eq!(
        b.open_topic::<u32>("ordres").unwrap_err(),
        TopicError::NotFound {
            name: "ordres".into()
        }
    );
    assert!(matches!(
        b.create_topic::<u32>("__x", TopicConfig::new()),
        Err(TopicError::InvalidName { .. })
    ));
    assert_eq!(b.topic_names(), vec!["orders".to_owned()]);
}

#[test]
fn invalid_configs_are_refused() {
    let b = Broker::new();
    assert!(matches!(
        b.topic::<u32>("a", TopicConfig::new().partitions(0)),
        Err(TopicError::InvalidConfig { .. })
    ));
    assert!(matches!(
        b.topic::<u32>("b", TopicConfig::new().capacity(0, Overflow::Block)),
        Err(TopicError::InvalidConfig { .. })
    ));
}

#[test]
fn group_members_share_partitions_and_rebalance_on_join_and_leave() {
    let t = topic::<u32>(TopicConfig::new().partitions(4));
    let g = t.group("g").unwrap();
    let mut a = g.join();
    a.refresh();
    assert_eq!(a.assignment(), vec![0, 1, 2, 3]);
    let mut b = g.join();
    a.refresh();
    b.refresh();
    let (pa, pb) = (a.assignment(), b.assignment());
    assert_eq!(pa.len() + pb.len(), 4);
    assert!(
        pa.iter().all(|p| !pb.contains(p)),
        "one owner per partition"
    );
    drop(a);
    b.refresh();
    assert_eq!(b.assignment(), vec![0, 1, 2, 3]);
    assert_eq!(g.members(), 1);
}

#[test]
fn a_new_owner_resumes_from_the_committed_offset() {
    let t = topic::<u32>(TopicConfig::new().partitions(2));
    let p = t.producer();
    for i in 0..20 {
        p.send_to_blocking(i % 2, i).unwrap();
    }
    let g = t.group("g").unwrap();
    let mut a = g.join();
    let mut seen = HashSet::new();
    for _ in 0..6 {
        let rec = a.recv_blocking().unwrap();
        seen.insert(*rec.value());
        rec.commit().unwrap();
    }
    // Read two more without committing: they are read again by the next owner.
    let uncommitted: Vec<u32> = (0..2)
        .map(|_| *a.recv_blocking().unwrap().value())
        .collect();
    drop(a);
    let mut b = g.join();
    let mut rest = Vec::new();
    while let Ok(rec) = b.try_recv() {
        rest.push(*rec.value());
    }
    assert_eq!(rest.len(), 14);
    for v in &uncommitted {
        assert!(rest.contains(v), "uncommitted {v} must be redelivered");
    }
    seen.extend(rest);
    assert_eq!(seen.len(), 20);
}

#[test]
fn a_member_that_lost_a_partition_cannot_commit_it() {
    let t = topic::<u32>(TopicConfig::new().partitions(2));
    t.producer().send_to_blocking(0, 1).unwrap();
    let g = t.group("g").unwrap();
    let mut a = g.join();
    let pos = a.recv_blocking().unwrap().position();
    let mut b = g.join();
    b.refresh();
    let err = a.commit(pos);
    if b.assignment().contains(&pos.partition) {
        assert!(matches!(err, Err(CommitError::NotOwner { .. })));
    } else {
        err.unwrap();
    }
    assert!(matches!(
        a.commit_offset(9, 0),
        Err(CommitError::NoSuchPartition { .. })
    ));
}

/// Issue 11, item 1 (R23): a member loses a partition to a rebalance and gets it back
/// without receiving in between. What it read before the loss can no longer be committed (it
/// would move the group's offset below what the other owner committed meanwhile), and it
/// resumes from the group's committed offset, not from where it had read to.
#[test]
fn a_member_that_lost_and_regained_a_partition_cannot_commit_what_it_read_before() {
    let t = topic::<u32>(TopicConfig::new().partitions(2));
    let p = t.producer();
    for i in 0..20 {
        p.send_to_blocking(1, i).unwrap();
    }
    let g = t.group("g").unwrap();
    let mut a = g.join();
    for expected in 0..5 {
        assert_eq!(a.recv_blocking().unwrap().offset(), expected);
    }
    // Read under A's first tenure of partition 1, kept until after the rebalances.
    let stale = a.recv_blocking().unwrap();
    assert_eq!(
        stale.position(),
        Position {
            partition: 1,
            offset: 5
        }
    );
    let mut b = g.join(); // partition 1 goes to B
    for expected in 0..9 {
        let record = b.recv_blocking().unwrap();
        assert_eq!(
            record.position(),
            Position {
                partition: 1,
                offset: expected
            }
        );
        record.commit().unwrap();
    }
    drop(b); // partition 1 comes back to A
    assert_eq!(g.committed(1), Some(9));
    assert!(matches!(
        stale.commit(),
        Err(CommitError::NotOwner { partition: 1, .. })
    ));
    assert!(matches!(
        a.commit_offset(1, 6),
        Err(CommitError::NotOwner { partition: 1, .. })
    ));
    assert_eq!(
        g.committed(1),
        Some(9),
        "a stale commit never moves the offset back"
    );
    let resumed = a.recv_blocking().unwrap();
    assert_eq!(
        resumed.position(),
        Position {
            partition: 1,
            offset: 9
        },
        "a regained partition resumes from the committed offset"
    );
    resumed.commit().unwrap();
    assert_eq!(g.committed(1), Some(10));
    // Its old positions stay refused under the new tenure too (they are below where it began).
    assert!(matches!(
        a.commit(Position {
            partition: 1,
            offset: 5
        }),
        Err(CommitError::Stale {
            partition: 1,
            offset: 6,
            from: 9
        })
    ));
    assert_eq!(g.committed(1), Some(10));
    // A seek back makes a rewind deliberate.
    a.seek(1, Start::Offset(2)).unwrap();
    a.commit_offset(1, 2).unwrap();
    assert_eq!(g.committed(1), Some(2));
}

/// A rebalance that leaves a partition with its owner does not fence its commits.
#[test]
fn a_rebalance_that_keeps_a_partition_with_its_owner_lets_it_commit() {
    let t = topic::<u32>(TopicConfig::new().partitions(2));
    t.producer().send_to_blocking(0, 7).unwrap();
    let g = t.group("g").unwrap();
    let mut a = g.join();
    let record = a.recv_blocking().unwrap();
    assert_eq!(record.partition(), 0);
    let b = g.join(); // A keeps partition 0 (sticky), B gets partition 1
    record.commit().unwrap();
    assert_eq!(g.committed(0), Some(1));
    drop(b);
}

/// The assignment changes a member reports, in order.
fn assigned(event: Result<broker::MemberEvent<'_, u32>, RecvError>) -> broker::AssignmentChange {
    match event {
        Ok(broker::MemberEvent::Assigned(change)) => change,
        other => panic!("expected an assignment change, got {other:?}"),
    }
}

/// Issue 11, item 5: a member learns of every change of its partitions before the first
/// record read under the new assignment, including a partition lost and got back.
#[test]
fn assignment_changes_come_before_the_records_read_under_them() {
    let t = topic::<u32>(TopicConfig::new().partitions(2));
    let p = t.producer();
    for i in 0..4 {
        p.send_to_blocking(i % 2, i).unwrap();
    }
    let g = t.group("g").unwrap();
    let mut a = g.join();
    let first = assigned(a.recv_event_blocking());
    assert_eq!(
        (first.partitions, first.assigned, first.revoked),
        (vec![0, 1], vec![0, 1], vec![])
    );
    let b = g.join();
    let change = assigned(a.recv_event_blocking());
    assert_eq!(
        (change.partitions, change.assigned, change.revoked),
        (vec![0], vec![], vec![1])
    );
    assert_eq!(change.generation, g.generation());
    // Only partition 0 from here on.
    for expected in [0, 2] {
        match a.recv_event_blocking() {
            Ok(broker::MemberEvent::Record(record)) => {
                assert_eq!((record.partition(), *record.value()), (0, expected))
            }
            other => panic!("{other:?}"),
        }
    }
    drop(b);
    let change = assigned(a.recv_event_blocking());
    assert_eq!((change.assigned, change.revoked), (vec![1], vec![]));
    // A partition lost and got back between two calls is both revoked and assigned.
    let c = g.join();
    drop(c);
    let change = assigned(a.recv_event_blocking());
    assert_eq!(
        (change.partitions, change.assigned, change.revoked),
        (vec![0, 1], vec![1], vec![1])
    );
    match a.try_recv_event() {
        Ok(broker::MemberEvent::Record(record)) => assert_eq!(record.partition(), 1),
        other => panic!("{other:?}"),
    }
    // A rebalance that does not touch this member is not reported.
    let t3 = topic::<u32>(TopicConfig::new().partitions(3));
    let g3 = t3.group("g").unwrap();
    let mut x = g3.join();
    let mut y = g3.join();
    assigned(x.recv_event_blocking());
    assigned(y.recv_event_blocking());
    let generation = g3.generation();
    let z = g3.join(); // 3 partitions, 3 members: one moves from `x` (2 -> 1), `y` keeps its one
    assert!(g3.generation() > generation);
    assert_eq!(y.try_recv_event().unwrap_err(), TryRecvError::Empty);
    assert_eq!(assigned(x.recv_event_blocking()).revoked.len(), 1);
    drop(z);
}

/// A member parked in `recv_event` is woken by a rebalance that changes its partitions.
#[test]
fn a_parked_member_is_woken_by_an_assignment_change() {
    let t = topic::<u32>(TopicConfig::new().partitions(2));
    let g = t.group("g").unwrap();
    let mut a = g.join();
    assigned(a.recv_event_blocking());
    let h = thread::spawn(move || {
        let change = assigned(a.recv_event_blocking());
        (change.partitions, change.revoked)
    });
    thread::sleep(Duration::from_millis(20));
    let _b = g.join();
    assert_eq!(h.join().unwrap(), (vec![0], vec![1]));
}

/// Issue 11, item 5: `leave` rebalances at once and says where the next owner resumes.
#[test]
fn leave_reports_what_the_member_released_and_the_others_resume_there() {
    let t = topic::<u32>(TopicConfig::new().partitions(2));
    let p = t.producer();
    for i in 0..10 {
        p.send_to_blocking(i % 2, i).unwrap();
    }
    let g = t.group("g").unwrap();
    let mut a = g.join();
    let mut b = g.join();
    a.refresh();
    b.refresh();
    let (pa, pb) = (a.assignment(), b.assignment());
    assert_eq!((pa.len(), pb.len()), (1, 1));
    for _ in 0..3 {
        a.recv_blocking().unwrap().commit().unwrap();
    }
    let _read_not_committed = a.recv_blocking().unwrap();
    let left = a.leave();
    assert_eq!(
        left.released,
        vec![Position {
            partition: pa[0],
            offset: 3
        }]
    );
    assert_eq!(left.generation, g.generation());
    assert_eq!(g.members(), 1);
    b.refresh();
    assert_eq!(b.assignment(), vec![0, 1]);
    assert_eq!(b.position(pa[0]), Some(3), "resumes where `a` committed");
    assert_eq!(b.leave().released.len(), 2);
    assert_eq!(g.members(), 0);
}

#[test]
fn group_lag_and_positions_are_reported() {
    let t = topic::<u32>(TopicConfig::new().partitions(2));
    let p = t.producer();
    for i in 0..10 {
        p.send_to_blocking(i % 2, i).unwrap();
    }
    let g = t.group("g").unwrap();
    assert_eq!(g.lag(), vec![5, 5]);
    let mut m = g.join();
    let rec = m.recv_blocking().unwrap();
    let part = rec.partition();
    rec.commit().unwrap();
    assert_eq!(g.committed(part), Some(1));
    assert_eq!(m.position(part), Some(1));
    assert_eq!(g.lag().iter().sum::<u64>(), 9);
    assert_eq!(m.lag(), 9);
}

#[test]
fn a_member_without_partitions_wakes_when_a_rebalance_gives_it_some() {
    let t = topic::<u32>(TopicConfig::new().partitions(1));
    let g = t.group("g").unwrap();
    let mut a = g.join();
    let mut b = g.join();
    a.refresh();
    b.refresh();
    assert_eq!((a.assignment(), b.assignment()), (vec![0], vec![]));
    t.producer().send_blocking(5).unwrap();
    let h = thread::spawn(move || *b.recv_blocking().unwrap().value());
    thread::sleep(Duration::from_millis(20));
    drop(a);
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
fn records_are_borrowed_and_copied_only_on_request() {
    let t = topic::<Vec<u8>>(TopicConfig::new());
    t.producer().send_blocking(vec![1, 2, 3]).unwrap();
    let mut r1 = t.consumer(Start::Earliest).unwrap();
    let mut r2 = t.consumer(Start::Earliest).unwrap();
    let a = r1.recv_blocking().unwrap();
    let b = r2.recv_blocking().unwrap();
    assert!(
        std::ptr::eq(a.value(), b.value()),
        "both readers see the same value in place"
    );
    let owned = a.to_owned();
    assert_eq!(owned.value, vec![1, 2, 3]);
    assert!(!std::ptr::eq(&owned.value, a.value()));
}

#[test]
fn batches_are_appended_in_order_across_blocks() {
    let t = topic::<u32>(TopicConfig::new().block_size(8));
    let p = t.producer();
    let last = p.send_batch_blocking(0, 0..100).unwrap();
    assert_eq!(
        last,
        Some(Position {
            partition: 0,
            offset: 99
        })
    );
    let mut r = t.consumer(Start::Earliest).unwrap();
    for i in 0..100 {
        assert_eq!(*r.recv_blocking().unwrap(), i);
    }
}

#[test]
fn age_retention_drops_old_blocks() {
    let t = topic::<u32>(
        TopicConfig::new()
            .block_size(4)
            .retain_age(Duration::from_millis(10)),
    );
    let p = t.producer();
    for i in 0..8 {
        p.send_blocking(i).unwrap();
    }
    thread::sleep(Duration::from_millis(30));
    p.send_blocking(8).unwrap();
    t.enforce_retention();
    assert_eq!(t.start_offsets(), vec![8]);
}

#[test]
fn byte_retention_bounds_what_is_kept() {
    let t = topic::<u64>(TopicConfig::new().block_size(4).retain_bytes(512));
    let p = t.producer();
    for i in 0..1_000 {
        p.send_blocking(i).unwrap();
    }
    let kept = t.end_offsets()[0] - t.start_offsets()[0];
    assert!(kept < 100, "kept {kept} records");
    assert!(kept > 0);
}

#[test]
fn dropped_values_are_freed() {
    let value = Arc::new(());
    let t = topic::<Arc<()>>(TopicConfig::new().capacity(8, Overflow::DropOldest));
    let p = t.producer();
    for _ in 0..1_000 {
        p.send_blocking(Arc::clone(&value)).unwrap();
    }
    assert!(
        Arc::strong_count(&value) <= 1 + 16 + 8,
        "{}",
        Arc::strong_count(&value)
    );
    drop(t);
    drop(p);
    assert_eq!(Arc::strong_count(&value), 1);
}

#[test]
fn public_types_are_send_and_sync_as_intended() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Broker>();
    send_sync::<broker::Topic<String>>();
    send_sync::<broker::Producer<String>>();
    send_sync::<broker::Group<String>>();
    send::<broker::Consumer<String>>();
    send::<broker::GroupMember<String>>();
    send_sync::<broker::Record<'static, String>>();
    send_sync::<SendError<String>>();
    send_sync::<TopicError>();
    fn future_is_send<F: std::future::Future + Send>(_: F) {}
    let t = topic::<String>(TopicConfig::new());
    let mut c = t.consumer(Start::Earliest).unwrap();
    future_is_send(async move {
        let _ = c.recv().await;
    });
    let p = t.producer();
    future_is_send(async move {
        let _ = p.send(String::new()).await;
    });
}

#[test]
fn async_batches_wait_for_room_and_keep_order() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = topic::<u32>(TopicConfig::new().capacity(16, Overflow::Block));
    let mut r = t.consumer(Start::Earliest).unwrap();
    let p = t.producer();
    let sender = rt.spawn(async move { p.send_batch(0, (0..1_000).collect::<Vec<_>>()).await });
    for i in 0..1_000 {
        assert_eq!(*r.recv_blocking().unwrap(), i);
    }
    let last = rt.block_on(sender).unwrap().unwrap();
    assert_eq!(
        last,
        Some(Position {
            partition: 0,
            offset: 999
        })
    );
}
