//! What every peer does: the constants of a run, and its records (a sequence number or send
//! times in their first bytes, checked when they come back).

use std::time::Duration;

use dataflow::backend::TopicReader;

/// Records per write, and at most per read.
pub const BATCH: u64 = 100;
/// The consumer group of every run.
pub const GROUP: &str = "bench";
/// `BLOCK` of the raw client's reads, and the wait of the bridge's `recv_batch`.
pub const READ_WAIT: Duration = Duration::from_millis(200);
/// A run that has not seen all its records by then has lost some.
pub const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// The consumer group of a Kafka run: its own per run, so that no run waits for the last
/// one's members to leave.
pub fn kafka_group(topic: &str) -> String {
    format!("{GROUP}-{topic}")
}

/// A record of `size` bytes carrying `stamp` (a sequence number or a send time).
pub fn record(stamp: u64, size: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; size];
    bytes[..8].copy_from_slice(&stamp.to_le_bytes());
    for (i, b) in bytes.iter_mut().enumerate().skip(8) {
        *b = (stamp as u8).wrapping_add(i as u8);
    }
    bytes
}

/// A latency record: its intended send time, then the time its send started.
pub fn timed_record(intended: u64, started: u64, size: usize) -> Vec<u8> {
    let mut bytes = record(intended, size);
    bytes[8..16].copy_from_slice(&started.to_le_bytes());
    bytes
}

/// The stamp of a record, after checking its size.
pub fn stamp(bytes: &[u8], size: usize) -> u64 {
    assert_eq!(bytes.len(), size, "a record of the wrong size came back");
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// Reads `n` records in order from `next`, panicking on anything else.
pub fn check_next(next: &mut u64, value: &[u8], size: usize) {
    let got = stamp(value, size);
    assert_eq!(got, *next, "record {next} expected, record {got} came");
    *next += 1;
}

/// Checks that no record more than sent arrives within `wait`, then leaves the group.
pub async fn drain_and_leave(mut reader: TopicReader<Vec<u8>>, wait: Duration) {
    let extra = reader
        .recv_batch(BATCH as usize, wait)
        .await
        .expect("recv_batch");
    assert!(extra.is_empty(), "{} records more than sent", extra.len());
    reader.leave().await.expect("leave");
}
