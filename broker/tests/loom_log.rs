//! Loom models of the log's core: claim / write / publish / read across a block boundary, and
//! the park / wake protocol of readers and of producers waiting for room.
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p broker --release --test loom_log`
//! (`.ci/run` does, with `LOOM_MAX_PREEMPTIONS=2`).
#![cfg(loom)]

use broker::{Broker, Overflow, Start, TopicConfig};
use loom::thread;

/// Two producers race for offsets in blocks of one slot (so every append also installs the next
/// block), while a reader parks until each record is published.
#[test]
fn racing_producers_get_dense_offsets_and_the_reader_sees_each_record_once() {
    loom::model(|| {
        let topic = Broker::new()
            .topic::<u32>("t", TopicConfig::new().block_size(1))
            .unwrap();
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let producers: Vec<_> = [1, 2]
            .into_iter()
            .map(|value| {
                let producer = topic.producer();
                thread::spawn(move || producer.send_blocking(value).unwrap())
            })
            .collect();
        let mut seen = Vec::new();
        for expected_offset in 0..2 {
            let record = reader.recv_blocking().unwrap();
            assert_eq!(record.offset(), expected_offset);
            seen.push(*record.value());
        }
        let mut offsets: Vec<u64> = producers
            .into_iter()
            .map(|h| h.join().unwrap().offset)
            .collect();
        offsets.sort_unstable();
        assert_eq!(offsets, vec![0, 1]);
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2]);
    });
}

/// A reader that parks is always woken by the append it waits for (no lost wake-up), and the
/// value it reads is the one written.
#[test]
fn a_parked_reader_is_woken_by_the_publish() {
    loom::model(|| {
        let topic = Broker::new()
            .topic::<String>("t", TopicConfig::new().block_size(2))
            .unwrap();
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let producer = topic.producer();
        let h = thread::spawn(move || {
            producer.send_blocking("a".to_owned()).unwrap();
        });
        assert_eq!(reader.recv_blocking().unwrap().value(), "a");
        h.join().unwrap();
    });
}

/// With `Overflow::Block` and room for one record, the producer's second send parks until the
/// reader moves on, and is always woken.
#[test]
fn a_producer_waiting_for_room_is_woken_by_the_reader() {
    loom::model(|| {
        let topic = Broker::new()
            .topic::<u32>(
                "t",
                TopicConfig::new()
                    .capacity(1, Overflow::Block)
                    .block_size(1),
            )
            .unwrap();
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let producer = topic.producer();
        let h = thread::spawn(move || {
            producer.send_blocking(1).unwrap();
            producer.send_blocking(2).unwrap();
        });
        assert_eq!(*reader.recv_blocking().unwrap(), 1);
        assert_eq!(*reader.recv_blocking().unwrap(), 2);
        h.join().unwrap();
    });
}

/// Closing races with a reader: the reader sees every record appended before the close, then
/// `Closed`, never a hang.
#[test]
fn close_wakes_a_parked_reader_after_the_last_record() {
    loom::model(|| {
        let topic = Broker::new()
            .topic::<u32>("t", TopicConfig::new().block_size(2))
            .unwrap();
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let producer = topic.producer();
        let closer = topic.clone();
        let h = thread::spawn(move || {
            let sent = producer.send_blocking(1).is_ok();
            closer.close();
            sent
        });
        let first = reader.recv_blocking().map(|r| *r.value());
        let sent = h.join().unwrap();
        if sent {
            assert_eq!(first, Ok(1));
            assert_eq!(
                reader.recv_blocking().map(|r| *r.value()),
                Err(broker::RecvError::Closed)
            );
        }
    });
}

/// Retention drops (and recycles) blocks while a reader races through them: the reader's
/// received records plus its reported `Lagged` counts always add up to what was sent, and it
/// never reads a value twice or out of order.
#[test]
fn retention_races_with_a_reader_and_the_counts_add_up() {
    loom::model(|| {
        let topic = Broker::new()
            .topic::<u32>(
                "t",
                TopicConfig::new()
                    .capacity(1, Overflow::DropOldest)
                    .block_size(1),
            )
            .unwrap();
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let producer = topic.producer();
        let h = thread::spawn(move || {
            for value in 0..3 {
                producer.send_blocking(value).unwrap();
            }
        });
        let (mut received, mut skipped, mut last) = (0u64, 0u64, None);
        let mut account = |reader: &mut broker::Consumer<u32>| match reader.try_recv() {
            Ok(record) => {
                assert!(last.is_none_or(|l| *record.value() > l), "in order, once");
                last = Some(*record.value());
                received += 1;
                true
            }
            Err(broker::TryRecvError::Lagged { skipped: n, .. }) => {
                skipped += n;
                true
            }
            Err(_) => false,
        };
        account(&mut reader);
        h.join().unwrap();
        while account(&mut reader) {}
        assert_eq!(received + skipped, 3);
    });
}

/// A bounded partition drops its oldest block as soon as it holds a whole block more than its
/// capacity, inside a block, not only when the next block is installed (capacity 3, blocks of
/// 2, so that the fourth append drops a block without installing one). The reader racing with
/// it still accounts for every record, in order.
#[test]
fn retention_inside_a_block_races_with_a_reader_and_the_counts_add_up() {
    loom::model(|| {
        let topic = Broker::new()
            .topic::<u32>(
                "t",
                TopicConfig::new()
                    .capacity(3, Overflow::DropOldest)
                    .block_size(2),
            )
            .unwrap();
        let mut reader = topic.consumer(Start::Earliest).unwrap();
        let producer = topic.producer();
        let h = thread::spawn(move || {
            for value in 0..5 {
                producer.send_blocking(value).unwrap();
            }
        });
        let (mut received, mut skipped, mut last) = (0u64, 0u64, None);
        let mut account = |reader: &mut broker::Consumer<u32>| match reader.try_recv() {
            Ok(record) => {
                assert_eq!(u64::from(*record.value()), record.offset());
                assert!(last.is_none_or(|l| *record.value() > l), "in order, once");
                last = Some(*record.value());
                received += 1;
                true
            }
            Err(broker::TryRecvError::Lagged { skipped: n, .. }) => {
                skipped += n;
                true
            }
            Err(_) => false,
        };
        account(&mut reader);
        h.join().unwrap();
        while account(&mut reader) {}
        assert_eq!(received + skipped, 5);
        let kept = topic.end_offsets()[0] - topic.start_offsets()[0];
        assert!((3..5).contains(&kept), "kept {kept}");
    });
}
