//! Memory stays bounded over a long run with retention: measured with a counting allocator,
//! not with time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use broker::{Broker, Overflow, Start, TopicConfig};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One million 64-byte records through a topic that keeps 4096: live memory after the run is
/// no larger than after the first 20 000, and everything is returned when the topic goes.
#[test]
fn memory_stays_bounded_with_retention_and_is_returned_on_drop() {
    let before = LIVE.load(Ordering::Relaxed);
    let broker = Broker::new();
    let topic = broker
        .topic::<[u64; 8]>(
            "mem",
            TopicConfig::new().capacity(4_096, Overflow::DropOldest),
        )
        .unwrap();
    let producer = topic.producer();
    let mut reader = topic.consumer(Start::Earliest).unwrap();
    let mut warm = 0;
    for i in 0..1_000_000u64 {
        producer.send_blocking([i; 8]).unwrap();
        if i % 7 == 0 {
            // A reader that keeps up now and then, holding a block while it reads.
            while reader.try_recv().is_ok() {}
        }
        if i == 20_000 {
            warm = LIVE.load(Ordering::Relaxed);
        }
    }
    let after = LIVE.load(Ordering::Relaxed);
    // One block of 1024 records of 64 bytes is ~70 KiB: allow two blocks of slack.
    assert!(
        after <= warm + 150_000,
        "live memory grew from {warm} to {after} bytes"
    );
    assert!(
        after - before < 1 << 20,
        "more than 1 MiB live for 4096 records: {}",
        after - before
    );
    drop((producer, reader, topic, broker));
    // A few hundred bytes of slack: libtest's own threads allocate while the test runs (seen
    // once on a loaded machine); one block the broker kept would be ~70 KiB.
    let left = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    assert!(left < 4_096, "memory not returned: {left} bytes still live");
}
