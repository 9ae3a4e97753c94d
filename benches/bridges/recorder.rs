//! The reader's side of a latency run: each record's latency from its intended send time
//! (and from the moment its send started) into HDR histograms, checking order and count.

use std::time::Duration;

use dataflow::backend::TopicReader;
use hdrhistogram::Histogram;

use crate::common::schedule::{Schedule, now_ns};
use crate::common::stats::latency_histogram;
use crate::workload::{BATCH, READ_WAIT, RUN_DEADLINE, drain_and_leave, stamp};

/// Reads `expected` records through `reader` into `rec`, committing each batch, then checks
/// that nothing more arrives within `drain_wait` and leaves the group.
pub async fn record_latencies(
    mut reader: TopicReader<Vec<u8>>,
    mut rec: Recorder,
    expected: u64,
    drain_wait: Duration,
) -> Recorder {
    while !rec.done(expected) {
        let batch = reader
            .recv_batch(BATCH as usize, READ_WAIT)
            .await
            .expect("recv_batch");
        for received in &batch {
            rec.record(received.value.as_ref().expect("decodes"));
        }
        reader.commit().await.expect("commit");
    }
    drain_and_leave(reader, drain_wait).await;
    rec
}

/// The reader's side of a latency run.
pub struct Recorder {
    schedule: Schedule,
    /// Bytes per record.
    size: usize,
    /// From the intended send time (the latency).
    pub hist: Histogram<u64>,
    /// From the moment the send started (without the sending thread's own delays).
    pub from_send: Histogram<u64>,
    /// Records received, recorded or not.
    pub received: u64,
    /// The intended send time of the last record received.
    last: Option<u64>,
}

impl Recorder {
    /// A recorder of the records of `schedule`, of `size` bytes each.
    pub fn new(schedule: Schedule, size: usize) -> Self {
        Self {
            schedule,
            size,
            hist: latency_histogram(),
            from_send: latency_histogram(),
            received: 0,
            last: None,
        }
    }

    /// Records one record's latencies, checking that it comes after the last one.
    pub fn record(&mut self, value: &[u8]) {
        let now = now_ns(self.schedule.base);
        let intended = stamp(value, self.size);
        assert!(
            self.last.is_none_or(|last| intended > last),
            "a record came twice or out of order"
        );
        self.last = Some(intended);
        self.received += 1;
        if intended >= self.schedule.record_from {
            self.hist
                .saturating_record(now.saturating_sub(intended).max(1));
            let started = u64::from_le_bytes(value[8..16].try_into().expect("8 bytes"));
            self.from_send
                .saturating_record(now.saturating_sub(started).max(1));
        }
    }

    /// Whether `expected` records came; panics once the schedule's end is `RUN_DEADLINE`
    /// behind.
    pub fn done(&self, expected: u64) -> bool {
        assert!(
            now_ns(self.schedule.base) < self.schedule.end + RUN_DEADLINE.as_nanos() as u64,
            "{expected} sent, {} received",
            self.received
        );
        self.received >= expected
    }
}
