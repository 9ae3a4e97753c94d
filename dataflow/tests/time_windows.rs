//! Windows against a reference in plain Rust, over out-of-order input with late records.
//!
//! Each case is a keyed stream in arrival order (event times shuffled by a random delay), a
//! watermark that follows a bounded out-of-orderness generator and sometimes jumps ahead (so
//! that records arrive late and too late), and an allowed lateness. The reference computes
//! the expected results in batch from the specification, not from the operators' code:
//!
//! - fixed windows (tumbling, hopping): a record counts in each window containing it whose
//!   `end + lateness` the watermark had not reached when the record arrived; a record that
//!   counts in none goes to the late output;
//! - sessions: a record counts if it is at most `lateness` behind the watermark when it
//!   arrives, and the sessions are those of the counted records, in batch; the others go to
//!   the late output.
//!
//! Every case also checks that each final result goes out at the first watermark that
//! reaches its window's `end + lateness`, and that a run saved and restored half-way emits
//! exactly what an uninterrupted run emits, in the same order.

use std::collections::BTreeMap;
use std::time::Duration;

use dataflow::time::{
    Aggregator, BoundedOutOfOrderness, Checkpointed, Count, EarlyFiring, Firing, Fold, Hopping,
    LateRecord, Reduce, Session, SessionState, Timestamp, Tumbling, Watermark, Window,
    WindowOperator, WindowResult, WindowState,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Event {
    key: u8,
    time: i64,
    value: u32,
}

/// A keyed stream in arrival order, with the watermark to advance to after each record.
#[derive(Debug, Clone)]
struct Scenario {
    events: Vec<Event>,
    advances: Vec<Option<i64>>,
    lateness: i64,
    /// Where the second run saves its state and restores it into a new operator.
    restore_at: usize,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let record = (0u8..3, -100i64..300, 0u32..1000, 0i64..40, 0u8..10);
    (
        prop::collection::vec(record, 0..80),
        0u64..20,
        0i64..30,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut raw, bound, lateness, restore)| {
            // Arrival order: event time plus a random delay.
            raw.sort_by_key(|&(_, time, _, delay, _)| time + delay);
            let mut generator =
                BoundedOutOfOrderness::new(Duration::from_millis(bound)).expect("valid bound");
            let mut events = Vec::new();
            let mut advances = Vec::new();
            for (key, time, value, _, step) in raw {
                events.push(Event { key, time, value });
                let watermark = generator.observe(Timestamp::from_millis(time));
                let at = watermark.timestamp().as_millis();
                advances.push(match step {
                    0..=3 => None,
                    4..=8 => Some(at),
                    _ => Some(at + 40),
                });
            }
            let restore_at = restore.index(events.len() + 1);
            Scenario {
                events,
                advances,
                lateness,
                restore_at,
            }
        })
}

/// What an operator emitted, with the watermarks around each result.
#[derive(Debug, Default, PartialEq)]
struct Run {
    /// Every result in order, with the watermark before and after the call that emitted it.
    results: Vec<(WindowResult<u8, u64>, i64, i64)>,
    late: Vec<(u8, i64, u32)>,
}

/// Feeds `s` to operators from `make`; with `restore`, saves and restores into a fresh one
/// before record `s.restore_at`.
fn run<O>(make: &dyn Fn() -> O, s: &Scenario, restore: bool) -> Run
where
    O: WindowOperator<u8, u32, Output = u64> + Checkpointed,
{
    let mut op = make();
    let mut out = Run::default();
    let millis = |w: Watermark| w.timestamp().as_millis();
    for (i, (e, advance)) in s.events.iter().zip(&s.advances).enumerate() {
        if restore && i == s.restore_at {
            let mut bytes = Vec::new();
            op.save(&mut bytes).expect("encodes");
            op = make();
            op.restore(&bytes).expect("decodes");
        }
        let before = millis(op.watermark());
        let added = op.add(e.key, Timestamp::from_millis(e.time), e.value, |r| {
            out.results.push((r, before, before))
        });
        if let Err(LateRecord {
            record, timestamp, ..
        }) = added
        {
            out.late.push((record.0, timestamp.as_millis(), record.1));
        }
        if let Some(to) = advance {
            let before = millis(op.watermark());
            let after = before.max(*to);
            op.advance(Watermark::new(Timestamp::from_millis(*to)), |r| {
                out.results.push((r, before, after))
            });
        }
    }
    let before = millis(op.watermark());
    op.advance(Watermark::MAX, |r| out.results.push((r, before, i64::MAX)));
    assert_eq!(
        op.open_windows(),
        0,
        "every window closes at the end of time"
    );
    assert_eq!(op.state_bytes(), 0);
    out
}

/// The watermark when each record arrives: the largest advanced to before it.
fn arrival_watermarks(s: &Scenario) -> Vec<i64> {
    let mut current = i64::MIN;
    let mut at = Vec::new();
    for advance in &s.advances {
        at.push(current);
        if let Some(to) = advance {
            current = current.max(*to);
        }
    }
    at
}

type Results = BTreeMap<(u8, i64, i64), u64>;

/// The reference of fixed windows of `size` every `slide`.
fn fixed_reference(
    s: &Scenario,
    size: i64,
    slide: i64,
    aggregate: fn(&[u32]) -> u64,
) -> (Results, Vec<(u8, i64, u32)>) {
    let mut windows: BTreeMap<(u8, i64, i64), Vec<u32>> = BTreeMap::new();
    let mut late = Vec::new();
    for (e, watermark) in s.events.iter().zip(arrival_watermarks(s)) {
        let open: Vec<(i64, i64)> = (e.time - size + 1..=e.time)
            .filter(|start| start.rem_euclid(slide) == 0)
            .map(|start| (start, start + size))
            .filter(|&(_, end)| watermark < end + s.lateness)
            .collect();
        if open.is_empty() {
            late.push((e.key, e.time, e.value));
        }
        for (start, end) in open {
            windows
                .entry((e.key, start, end))
                .or_default()
                .push(e.value);
        }
    }
    let results = windows
        .into_iter()
        .map(|(k, v)| (k, aggregate(&v)))
        .collect();
    (results, late)
}

/// The reference of sessions with `gap`.
fn session_reference(
    s: &Scenario,
    gap: i64,
    aggregate: fn(&[u32]) -> u64,
) -> (Results, Vec<(u8, i64, u32)>) {
    let mut accepted: BTreeMap<u8, Vec<(i64, u32)>> = BTreeMap::new();
    let mut late = Vec::new();
    for (e, watermark) in s.events.iter().zip(arrival_watermarks(s)) {
        if e.time >= watermark.saturating_sub(s.lateness) {
            accepted.entry(e.key).or_default().push((e.time, e.value));
        } else {
            late.push((e.key, e.time, e.value));
        }
    }
    let mut results = Results::new();
    for (key, mut records) in accepted {
        records.sort();
        let mut session: Vec<(i64, u32)> = Vec::new();
        for record in records {
            if let Some(&(last, _)) = session.last()
                && record.0 - last >= gap
            {
                let values: Vec<u32> = session.iter().map(|r| r.1).collect();
                results.insert((key, session[0].0, last + gap), aggregate(&values));
                session.clear();
            }
            session.push(record);
        }
        if let Some(&(last, _)) = session.last() {
            let values: Vec<u32> = session.iter().map(|r| r.1).collect();
            results.insert((key, session[0].0, last + gap), aggregate(&values));
        }
    }
    (results, late)
}

fn count(values: &[u32]) -> u64 {
    values.len() as u64
}

fn sum(values: &[u32]) -> u64 {
    values.iter().map(|&v| u64::from(v)).sum()
}

/// Checks a run's final results and late records against the reference, and that a
/// restored run emits the same results (early ones included) in the same order.
fn check<O>(
    make: &dyn Fn() -> O,
    s: &Scenario,
    (want, want_late): (Results, Vec<(u8, i64, u32)>),
) -> Result<(), TestCaseError>
where
    O: WindowOperator<u8, u32, Output = u64> + Checkpointed,
{
    let got = run(make, s, false);
    let mut finals = Results::new();
    for (r, before, after) in &got.results {
        if r.firing == Firing::Early {
            continue;
        }
        let closes = r.window.end.as_millis().saturating_add(s.lateness);
        prop_assert!(
            *after >= closes && *before < closes,
            "{:?} went out when the watermark moved from {} to {}",
            r,
            before,
            after
        );
        let window = (r.key, r.window.start.as_millis(), r.window.end.as_millis());
        prop_assert!(
            finals.insert(window, r.value).is_none(),
            "two final results of {:?}",
            window
        );
    }
    prop_assert_eq!(finals, want);
    let mut late = got.late.clone();
    late.sort();
    let mut want_late = want_late;
    want_late.sort();
    prop_assert_eq!(late, want_late);
    prop_assert_eq!(run(make, s, true), got, "a restored run differs");
    Ok(())
}

fn ms(n: i64) -> Duration {
    Duration::from_millis(n as u64)
}

fn sum_reduce() -> Reduce<fn(u64, u64) -> u64> {
    Reduce::new(|a, b| a + b)
}

/// `Reduce` over `u64` values, for `u32` records.
struct Widen<A>(A);

impl<A: Aggregator<u64>> Aggregator<u32> for Widen<A> {
    type Acc = A::Acc;
    type Output = A::Output;
    fn init(&self) -> A::Acc {
        self.0.init()
    }
    fn add(&mut self, acc: &mut A::Acc, value: u32) {
        self.0.add(acc, u64::from(value));
    }
    fn output(&self, acc: &A::Acc) -> A::Output {
        self.0.output(acc)
    }
}

impl<A: dataflow::time::SessionAggregator<u64>> dataflow::time::SessionAggregator<u32>
    for Widen<A>
{
    fn merge(&mut self, acc: &mut A::Acc, other: A::Acc) {
        self.0.merge(acc, other);
    }
}

proptest! {
    #[test]
    fn tumbling_counts_match_the_reference(s in scenario(), size in 1i64..50) {
        let make = || {
            WindowState::new(Tumbling::new(ms(size)).expect("valid"), Count)
                .with_lateness(ms(s.lateness))
                .expect("valid")
        };
        check(&make, &s, fixed_reference(&s, size, size, count))?;
    }

    #[test]
    fn tumbling_folds_match_the_reference(s in scenario(), size in 1i64..50) {
        let make = || {
            let fold = Fold::new(0u64, |acc: u64, x: u32| acc + u64::from(x));
            WindowState::new(Tumbling::new(ms(size)).expect("valid"), fold)
                .with_lateness(ms(s.lateness))
                .expect("valid")
        };
        check(&make, &s, fixed_reference(&s, size, size, sum))?;
    }

    #[test]
    fn hopping_counts_match_the_reference(
        s in scenario(),
        (size, slide) in (1i64..50).prop_flat_map(|size| (Just(size), 1..=size)),
    ) {
        let make = || {
            WindowState::new(Hopping::new(ms(size), ms(slide)).expect("valid"), Count)
                .with_lateness(ms(s.lateness))
                .expect("valid")
        };
        check(&make, &s, fixed_reference(&s, size, slide, count))?;
    }

    #[test]
    fn hopping_reductions_match_the_reference(
        s in scenario(),
        (size, slide) in (1i64..50).prop_flat_map(|size| (Just(size), 1..=size)),
    ) {
        let make = || {
            WindowState::new(Hopping::new(ms(size), ms(slide)).expect("valid"), Widen(sum_reduce()))
                .with_lateness(ms(s.lateness))
                .expect("valid")
        };
        check(&make, &s, fixed_reference(&s, size, slide, sum))?;
    }

    #[test]
    fn session_counts_match_the_reference(s in scenario(), gap in 1i64..40) {
        let make = || {
            SessionState::new(Session::new(ms(gap)).expect("valid"), Count)
                .with_lateness(ms(s.lateness))
                .expect("valid")
        };
        check(&make, &s, session_reference(&s, gap, count))?;
    }

    #[test]
    fn session_reductions_match_the_reference(s in scenario(), gap in 1i64..40) {
        let make = || {
            SessionState::new(Session::new(ms(gap)).expect("valid"), Widen(sum_reduce()))
                .with_lateness(ms(s.lateness))
                .expect("valid")
        };
        check(&make, &s, session_reference(&s, gap, sum))?;
    }

    /// Early results every few updates or every period of event time change no final result,
    /// and a restored run sends the same ones in the same order.
    #[test]
    fn early_results_change_no_final_one_and_replay_after_a_restore(
        s in scenario(),
        (size, slide) in (1i64..50).prop_flat_map(|size| (Just(size), 1..=size)),
        gap in 1i64..40,
        updates in 1u64..4,
        period in 1i64..30,
    ) {
        for early in [
            EarlyFiring::every_updates(updates).expect("valid"),
            EarlyFiring::every_event_time(ms(period)).expect("valid"),
        ] {
            let fixed = || {
                WindowState::new(Hopping::new(ms(size), ms(slide)).expect("valid"), Count)
                    .with_lateness(ms(s.lateness))
                    .expect("valid")
                    .with_early_firing(early)
            };
            check(&fixed, &s, fixed_reference(&s, size, slide, count))?;
            let sessions = || {
                SessionState::new(Session::new(ms(gap)).expect("valid"), Count)
                    .with_lateness(ms(s.lateness))
                    .expect("valid")
                    .with_early_firing(early)
            };
            check(&sessions, &s, session_reference(&s, gap, count))?;
        }
    }

    /// With a result on every update, a window's last early result before its final one
    /// equals it, and there is one early result per record counted in a window.
    #[test]
    fn early_results_on_every_update_lead_to_the_final_one(
        s in scenario(),
        (size, slide) in (1i64..50).prop_flat_map(|size| (Just(size), 1..=size)),
        gap in 1i64..40,
    ) {
        let fixed = || {
            WindowState::new(Hopping::new(ms(size), ms(slide)).expect("valid"), Count)
                .with_lateness(ms(s.lateness))
                .expect("valid")
                .with_early_firing(EarlyFiring::every_update())
        };
        let sessions = || {
            SessionState::new(Session::new(ms(gap)).expect("valid"), Count)
                .with_lateness(ms(s.lateness))
                .expect("valid")
                .with_early_firing(EarlyFiring::every_update())
        };
        let (fixed_want, _) = fixed_reference(&s, size, slide, count);
        let (session_want, _) = session_reference(&s, gap, count);
        for (got, want) in [(run(&fixed, &s, false), fixed_want), (run(&sessions, &s, false), session_want)] {
            let mut last_early: BTreeMap<(u8, Window), u64> = BTreeMap::new();
            let mut early = 0u64;
            let mut finals = Results::new();
            for (r, _, _) in &got.results {
                match r.firing {
                    Firing::Early => {
                        early += 1;
                        last_early.insert((r.key, r.window), r.value);
                    }
                    Firing::Final => {
                        prop_assert_eq!(last_early.get(&(r.key, r.window)), Some(&r.value));
                        finals.insert((r.key, r.window.start.as_millis(), r.window.end.as_millis()), r.value);
                    }
                }
            }
            // Counting records: a count of n went out after each of its n updates.
            prop_assert_eq!(early, want.values().sum::<u64>());
            prop_assert_eq!(finals, want);
        }
    }
}
