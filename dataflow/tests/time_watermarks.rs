//! Task watermarks against a reference in plain Rust: the minimum over the inputs that showed
//! activity within the idle timeout, never moving backwards.

use std::time::{Duration, Instant};

use dataflow::time::{
    BoundedOutOfOrderness, Checkpointed, SourceWatermarks, Timestamp, Watermark, WatermarkTracker,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Input `0` says its watermark is `1`.
    Observe(usize, i64),
    /// Input `0` delivered a record and no watermark.
    Touch(usize),
    /// Input `0` says it is idle.
    MarkIdle(usize),
    /// `0` seconds pass, then a tick.
    Tick(u64),
}

fn ops(inputs: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (0..inputs, -50i64..200).prop_map(|(i, w)| Op::Observe(i, w)),
            (0..inputs).prop_map(Op::Touch),
            (0..inputs).prop_map(Op::MarkIdle),
            (0u64..8).prop_map(Op::Tick),
        ],
        0..60,
    )
}

fn wm(ms: i64) -> Watermark {
    Watermark::new(Timestamp::from_millis(ms))
}

proptest! {
    #[test]
    fn the_task_watermark_is_the_minimum_over_active_inputs_and_never_goes_back(
        (inputs, ops) in (1usize..4).prop_flat_map(|n| (Just(n), ops(n))),
        timeout in prop::option::of(0u64..10),
    ) {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(inputs);
        if let Some(t) = timeout {
            tracker = tracker.with_idle_timeout(Duration::from_secs(t));
        }
        // The reference: per input its highest watermark and the second of its last activity
        // (as of a tick); the task's watermark.
        let mut marks = vec![i64::MIN; inputs];
        let mut active_at: Vec<Option<u64>> = vec![None; inputs];
        let mut touched = vec![false; inputs];
        let mut declared = vec![false; inputs];
        let mut current = i64::MIN;
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Observe(i, w) => {
                    marks[i] = marks[i].max(w);
                    touched[i] = true;
                    declared[i] = false;
                    tracker.observe(i, wm(w));
                }
                Op::Touch(i) => {
                    touched[i] = true;
                    declared[i] = false;
                    tracker.touch(i);
                }
                Op::MarkIdle(i) => {
                    touched[i] = false;
                    declared[i] = true;
                    tracker.mark_idle(i);
                }
                Op::Tick(seconds) => {
                    now += seconds;
                    // An input active since the last tick (or ticked for the first time
                    // without having said it is idle) is not idle; one that said so is;
                    // another is once its last activity is a timeout old.
                    let mut fresh = vec![false; inputs];
                    for i in 0..inputs {
                        if touched[i] || (active_at[i].is_none() && !declared[i]) {
                            active_at[i] = Some(now);
                            touched[i] = false;
                            fresh[i] = true;
                        }
                    }
                    let idle = |i: usize| {
                        !fresh[i]
                            && (declared[i]
                                || timeout.is_some_and(|t| now - active_at[i].expect("set") >= t))
                    };
                    let low = (0..inputs).filter(|&i| !idle(i)).map(|i| marks[i]).min();
                    let before = current;
                    if let Some(low) = low {
                        current = current.max(low);
                    }
                    let moved = tracker.tick(start + Duration::from_secs(now));
                    prop_assert_eq!(moved, (current > before).then(|| wm(current)));
                    for i in 0..inputs {
                        prop_assert_eq!(tracker.is_idle(i), idle(i));
                    }
                    prop_assert_eq!(tracker.all_idle(), (0..inputs).all(idle));
                }
            }
            prop_assert_eq!(tracker.watermark(), wm(current));
        }
    }

    #[test]
    fn a_source_watermark_trails_its_slowest_partition_by_the_bound(
        records in prop::collection::vec((0u32..3, -100i64..300), 1..80),
        bound in 0u64..50,
        restore in any::<prop::sample::Index>(),
    ) {
        let now = Instant::now();
        let make = || SourceWatermarks::new(0..3, Duration::from_millis(bound)).expect("valid");
        let mut source = make();
        let restore_at = restore.index(records.len());
        let mut max = [i64::MIN; 3];
        for (i, &(partition, time)) in records.iter().enumerate() {
            if i == restore_at {
                let mut bytes = Vec::new();
                source.save(&mut bytes).expect("encodes");
                source = make();
                source.restore(&bytes).expect("decodes");
            }
            source.observe(partition, Timestamp::from_millis(time));
            max[partition as usize] = max[partition as usize].max(time);
            source.tick(now);
            let slowest = max.iter().min().expect("three partitions");
            let want = if *slowest == i64::MIN { i64::MIN } else { slowest - bound as i64 };
            prop_assert_eq!(source.watermark(), wm(want));
        }
        // One generator alone agrees with the partition's watermark.
        let mut alone = BoundedOutOfOrderness::new(Duration::from_millis(bound)).expect("valid");
        for &(_, time) in records.iter().filter(|r| r.0 == 0) {
            alone.observe(Timestamp::from_millis(time));
        }
        prop_assert_eq!(Some(alone.watermark()), source.partition_watermark(0));
    }
}
