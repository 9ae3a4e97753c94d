//! Batch receives on independent readers and group members (issue 11, item 5): limits,
//! deadlines, nothing skipped without a report, and cancel-safety of every async receive.

use std::thread;
use std::time::Duration;

use broker::{
    Broker, Overflow, OwnedRecord, RecvError, RecvTimeoutError, Start, TopicConfig, TryRecvError,
};

fn values<T: Copy>(batch: &[OwnedRecord<T>]) -> Vec<T> {
    batch.iter().map(|r| r.value).collect()
}

#[test]
fn a_batch_takes_what_is_there_up_to_its_limit_in_order() {
    let t = Broker::new()
        .topic::<u32>("t", TopicConfig::new().block_size(4))
        .unwrap();
    t.producer().send_batch_blocking(0, 0..10).unwrap();
    let mut r = t.consumer(Start::Earliest).unwrap();
    let mut batch = Vec::new();
    assert_eq!(r.recv_batch_blocking(3, &mut batch), Ok(3));
    assert_eq!(values(&batch), [0, 1, 2]);
    assert_eq!(r.try_recv_batch(100, &mut batch), Ok(7), "across blocks");
    assert_eq!(values(&batch), (0..10).collect::<Vec<_>>());
    assert_eq!(
        batch.iter().map(|r| r.position.offset).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(r.try_recv_batch(100, &mut batch), Err(TryRecvError::Empty));
    assert_eq!(r.try_recv_batch(0, &mut batch), Ok(0));
    assert_eq!(
        r.recv_batch_timeout(10, &mut batch, Duration::from_millis(5)),
        Err(RecvTimeoutError::Timeout)
    );
    let producer = t.producer();
    let h = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        producer.send_blocking(10).unwrap();
    });
    batch.clear();
    assert_eq!(
        r.recv_batch_blocking(10, &mut batch),
        Ok(1),
        "waits for one"
    );
    assert_eq!(values(&batch), [10]);
    h.join().unwrap();
    t.close();
    assert_eq!(
        r.recv_batch_blocking(10, &mut batch),
        Err(RecvError::Closed)
    );
}

/// A `Lagged` met in the middle of a batch ends it and is reported by the next receive: a
/// batch never skips records silently.
#[test]
fn a_lag_met_inside_a_batch_is_reported_by_the_next_receive() {
    let t = Broker::new()
        .topic::<u32>(
            "t",
            TopicConfig::new()
                .partitions(2)
                .capacity(8, Overflow::DropOldest),
        )
        .unwrap();
    let mut r = t.consumer(Start::Earliest).unwrap();
    let p = t.producer();
    p.send_to_blocking(0, 1_000).unwrap();
    for i in 0..100 {
        p.send_to_blocking(1, i).unwrap();
    }
    let mut batch = Vec::new();
    assert_eq!(r.try_recv_batch(100, &mut batch), Ok(1));
    assert_eq!(values(&batch), [1_000]);
    let skipped = match r.try_recv_batch(100, &mut batch) {
        Err(TryRecvError::Lagged {
            partition: 1,
            skipped,
        }) => skipped,
        other => panic!("expected the deferred lag, got {other:?}"),
    };
    batch.clear();
    let received = r.try_recv_batch(100, &mut batch).unwrap() as u64;
    assert_eq!(skipped + received, 100, "received + skipped == sent");
    assert_eq!(batch[0].value as u64, skipped);
}

#[test]
fn a_group_member_receives_batches_and_commits_them() {
    let t = Broker::new()
        .topic::<u32>("t", TopicConfig::new().partitions(2))
        .unwrap();
    let p = t.producer();
    for i in 0..20 {
        p.send_to_blocking(i % 2, i).unwrap();
    }
    let g = t.group("g").unwrap();
    let mut m = g.join();
    let mut batch = Vec::new();
    let mut received = 0;
    while received < 20 {
        let n = m.recv_batch_blocking(7, &mut batch).unwrap();
        assert!((1..=7).contains(&n));
        received += n;
    }
    assert_eq!(m.try_recv_batch(7, &mut batch), Err(TryRecvError::Empty));
    for partition in 0..2 {
        let last = batch
            .iter()
            .filter(|r| r.position.partition == partition)
            .map(|r| r.position)
            .max()
            .unwrap();
        m.commit(last).unwrap();
    }
    assert_eq!((g.committed(0), g.committed(1)), (Some(10), Some(10)));
    let mut sorted = values(&batch);
    sorted.sort_unstable();
    assert_eq!(sorted, (0..20).collect::<Vec<_>>());
}

/// Dropping a pending receive (of any kind) loses nothing: the record appended after it was
/// dropped is the next one received.
#[test]
fn dropping_a_pending_receive_loses_nothing() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let t = Broker::new().topic::<u32>("t", TopicConfig::new()).unwrap();
    let producer = t.producer();
    let mut consumer = t.consumer(Start::Earliest).unwrap();
    let mut member = t.group("g").unwrap().join();
    let mut batch = Vec::new();
    for value in 0..3 {
        assert!(pin!(consumer.recv()).poll(&mut cx).is_pending());
        assert!(pin!(member.recv()).poll(&mut cx).is_pending());
        assert!(
            pin!(consumer.recv_batch(5, &mut batch))
                .poll(&mut cx)
                .is_pending()
        );
        assert!(
            pin!(member.recv_batch(5, &mut batch))
                .poll(&mut cx)
                .is_pending()
        );
        producer.send_blocking(value).unwrap();
        assert_eq!(*consumer.try_recv().unwrap(), value);
        assert_eq!(*member.try_recv().unwrap().value(), value);
    }
    let mut again = t.consumer(Start::Earliest).unwrap();
    let Poll::Ready(Ok(3)) = pin!(again.recv_batch(5, &mut batch)).poll(&mut cx) else {
        panic!("a batch that finds records completes in the same poll");
    };
    assert_eq!(values(&batch), [0, 1, 2]);
}

/// Every async receive is cancel-safe: readers whose receives are cut short by a timeout
/// most of the time, while a producer appends, still get every record exactly once, in
/// order.
#[test]
fn async_receives_cut_short_by_timeouts_lose_nothing() {
    const N: u32 = 5_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = Broker::new()
        .topic::<u32>("t", TopicConfig::new().block_size(16))
        .unwrap();
    let cut = Duration::from_micros(50);
    let mut consumer = t.consumer(Start::Earliest).unwrap();
    let a = rt.spawn(async move {
        let mut got = Vec::new();
        while got.len() < N as usize {
            if let Ok(record) = tokio::time::timeout(cut, consumer.recv()).await {
                got.push(*record.unwrap());
            }
        }
        got
    });
    let mut member = t.group("g").unwrap().join();
    let b = rt.spawn(async move {
        let mut got = Vec::new();
        while got.len() < N as usize {
            if let Ok(record) = tokio::time::timeout(cut, member.recv()).await {
                got.push(*record.unwrap().value());
            }
        }
        got
    });
    let mut consumer = t.consumer(Start::Earliest).unwrap();
    let c = rt.spawn(async move {
        let (mut got, mut batch) = (Vec::new(), Vec::new());
        while got.len() < N as usize {
            if let Ok(n) = tokio::time::timeout(cut, consumer.recv_batch(10, &mut batch)).await {
                n.unwrap();
                got.extend(batch.drain(..).map(|r| r.value));
            }
        }
        got
    });
    let mut member = t.group("batches").unwrap().join();
    let d = rt.spawn(async move {
        let (mut got, mut batch) = (Vec::new(), Vec::new());
        while got.len() < N as usize {
            if let Ok(n) = tokio::time::timeout(cut, member.recv_batch(10, &mut batch)).await {
                n.unwrap();
                got.extend(batch.drain(..).map(|r| r.value));
            }
        }
        got
    });
    let producer = t.producer();
    for i in 0..N {
        producer.send_blocking(i).unwrap();
        if i % 64 == 0 {
            thread::sleep(Duration::from_micros(200));
        }
    }
    for (which, task) in ["recv", "member recv", "recv_batch", "member recv_batch"]
        .into_iter()
        .zip([a, b, c, d])
    {
        let got = rt.block_on(task).unwrap();
        assert_eq!(got, (0..N).collect::<Vec<_>>(), "{which}");
    }
}
