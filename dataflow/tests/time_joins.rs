//! Joins against a reference in plain Rust, over out-of-order input with late records.
//!
//! Each case is two keyed streams interleaved in arrival order (event times shuffled by a
//! random delay), a watermark that follows a bounded out-of-orderness generator and sometimes
//! jumps ahead, a join window and an allowed lateness. The reference, from the specification:
//! a record counts if it is at most `lateness` behind the watermark when it arrives (the
//! others go to the late output); the inner join is every pair of counted left and right
//! records of a key at most `within` apart; the left join adds `(l, None)` for each counted
//! left record with no such partner, emitted at the first watermark past `l.time + within +
//! lateness`. A run saved and restored half-way emits exactly what an uninterrupted run does.
//!
//! The stream-table join is checked against the table rebuilt, for each stream record, from
//! every change that arrived before it.

use std::collections::BTreeMap;
use std::time::Duration;

use dataflow::time::{
    BoundedOutOfOrderness, Checkpointed, InnerJoin, LateRecord, LeftJoin, Table, Timestamp,
    Watermark,
};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

#[derive(Debug, Clone)]
struct Event {
    side: Side,
    key: u8,
    time: i64,
    /// Unique, so that pairs name their records.
    id: u32,
}

#[derive(Debug, Clone)]
struct Scenario {
    events: Vec<Event>,
    advances: Vec<Option<i64>>,
    within: i64,
    lateness: i64,
    restore_at: usize,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let record = (any::<bool>(), 0u8..3, -50i64..200, 0i64..40, 0u8..10);
    (
        prop::collection::vec(record, 0..60),
        0u64..20,
        0i64..30,
        0i64..30,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut raw, bound, within, lateness, restore)| {
            raw.sort_by_key(|&(_, _, time, delay, _)| time + delay);
            let mut generator =
                BoundedOutOfOrderness::new(Duration::from_millis(bound)).expect("valid bound");
            let mut events = Vec::new();
            let mut advances = Vec::new();
            for (id, (left, key, time, _, step)) in raw.into_iter().enumerate() {
                let side = if left { Side::Left } else { Side::Right };
                events.push(Event {
                    side,
                    key,
                    time,
                    id: id as u32,
                });
                let at = generator
                    .observe(Timestamp::from_millis(time))
                    .timestamp()
                    .as_millis();
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
                within,
                lateness,
                restore_at,
            }
        })
}

/// A left join's output: the key, the left id and the right id if any.
type Pair = (u8, u32, Option<u32>);

#[derive(Debug, Default, PartialEq)]
struct Run {
    /// Every output in order, with the watermark before and after the call that emitted it.
    pairs: Vec<(Pair, i64, i64)>,
    late: Vec<u32>,
}

/// The calls both joins answer, so that one driver runs both.
trait Join: Checkpointed {
    fn left(&mut self, key: u8, time: i64, id: u32, out: &mut dyn FnMut(Pair)) -> Result<(), u32>;
    fn right(&mut self, key: u8, time: i64, id: u32, out: &mut dyn FnMut(Pair)) -> Result<(), u32>;
    fn advance(&mut self, to: Watermark, out: &mut dyn FnMut(Pair));
    fn watermark(&self) -> i64;
    fn buffered(&self) -> usize;
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn id<K>(late: LateRecord<(K, u32)>) -> u32 {
    late.record.1
}

impl Join for InnerJoin<u8, u32, u32> {
    fn left(&mut self, key: u8, time: i64, id: u32, out: &mut dyn FnMut(Pair)) -> Result<(), u32> {
        self.add_left(key, at(time), id, |(k, (l, r))| out((k, l, Some(r))))
            .map(drop)
            .map_err(self::id)
    }
    fn right(&mut self, key: u8, time: i64, id: u32, out: &mut dyn FnMut(Pair)) -> Result<(), u32> {
        self.add_right(key, at(time), id, |(k, (l, r))| out((k, l, Some(r))))
            .map(drop)
            .map_err(self::id)
    }
    fn advance(&mut self, to: Watermark, out: &mut dyn FnMut(Pair)) {
        InnerJoin::advance(self, to, |(k, (l, r))| out((k, l, Some(r))));
    }
    fn watermark(&self) -> i64 {
        InnerJoin::watermark(self).timestamp().as_millis()
    }
    fn buffered(&self) -> usize {
        InnerJoin::buffered(self)
    }
}

impl Join for LeftJoin<u8, u32, u32> {
    fn left(&mut self, key: u8, time: i64, id: u32, out: &mut dyn FnMut(Pair)) -> Result<(), u32> {
        self.add_left(key, at(time), id, |(k, (l, r))| out((k, l, r)))
            .map(drop)
            .map_err(self::id)
    }
    fn right(&mut self, key: u8, time: i64, id: u32, out: &mut dyn FnMut(Pair)) -> Result<(), u32> {
        self.add_right(key, at(time), id, |(k, (l, r))| out((k, l, r)))
            .map(drop)
            .map_err(self::id)
    }
    fn advance(&mut self, to: Watermark, out: &mut dyn FnMut(Pair)) {
        LeftJoin::advance(self, to, |(k, (l, r))| out((k, l, r)));
    }
    fn watermark(&self) -> i64 {
        LeftJoin::watermark(self).timestamp().as_millis()
    }
    fn buffered(&self) -> usize {
        LeftJoin::buffered(self)
    }
}

fn run<J: Join>(make: &dyn Fn() -> J, s: &Scenario, restore: bool) -> Run {
    let mut join = make();
    let mut out = Run::default();
    for (i, (e, advance)) in s.events.iter().zip(&s.advances).enumerate() {
        if restore && i == s.restore_at {
            let mut bytes = Vec::new();
            join.save(&mut bytes).expect("encodes");
            join = make();
            join.restore(&bytes).expect("decodes");
        }
        let before = join.watermark();
        let mut emit = |p: Pair| out.pairs.push((p, before, before));
        let added = match e.side {
            Side::Left => join.left(e.key, e.time, e.id, &mut emit),
            Side::Right => join.right(e.key, e.time, e.id, &mut emit),
        };
        if let Err(id) = added {
            out.late.push(id);
        }
        if let Some(to) = advance {
            let before = join.watermark();
            let after = before.max(*to);
            join.advance(Watermark::new(at(*to)), &mut |p| {
                out.pairs.push((p, before, after))
            });
        }
    }
    let before = join.watermark();
    join.advance(Watermark::MAX, &mut |p| {
        out.pairs.push((p, before, i64::MAX))
    });
    assert_eq!(
        join.buffered(),
        0,
        "every record expires at the end of time"
    );
    out
}

/// The records that count and those too late, by the specification.
fn accepted(s: &Scenario) -> (Vec<&Event>, Vec<u32>) {
    let mut watermark = i64::MIN;
    let mut counted = Vec::new();
    let mut late = Vec::new();
    for (e, advance) in s.events.iter().zip(&s.advances) {
        if e.time >= watermark.saturating_sub(s.lateness) {
            counted.push(e);
        } else {
            late.push(e.id);
        }
        if let Some(to) = advance {
            watermark = watermark.max(*to);
        }
    }
    (counted, late)
}

/// The expected outputs as a multiset; with `left`, the unmatched left records too.
fn reference(s: &Scenario, left: bool) -> (BTreeMap<Pair, usize>, Vec<u32>) {
    let (counted, late) = accepted(s);
    let mut want = BTreeMap::new();
    for l in counted.iter().filter(|e| e.side == Side::Left) {
        let mut matched = false;
        for r in counted.iter().filter(|e| e.side == Side::Right) {
            if r.key == l.key && (r.time - l.time).abs() <= s.within {
                *want.entry((l.key, l.id, Some(r.id))).or_default() += 1;
                matched = true;
            }
        }
        if left && !matched {
            *want.entry((l.key, l.id, None)).or_default() += 1;
        }
    }
    (want, late)
}

fn check<J: Join>(make: &dyn Fn() -> J, s: &Scenario, left: bool) -> Result<(), TestCaseError> {
    let got = run(make, s, false);
    let times: BTreeMap<u32, i64> = s.events.iter().map(|e| (e.id, e.time)).collect();
    let mut pairs = BTreeMap::new();
    for &(pair, before, after) in &got.pairs {
        if pair.2.is_none() {
            // An unmatched left record goes out at the first watermark past its expiry.
            let expires = times[&pair.1] + s.within + s.lateness;
            prop_assert!(
                after > expires && before <= expires,
                "{:?} at {}..{}",
                pair,
                before,
                after
            );
        }
        *pairs.entry(pair).or_default() += 1;
    }
    let (want, mut want_late) = reference(s, left);
    prop_assert_eq!(pairs, want);
    let mut late = got.late.clone();
    late.sort();
    want_late.sort();
    prop_assert_eq!(late, want_late);
    prop_assert_eq!(run(make, s, true), got, "a restored run differs");
    Ok(())
}

fn ms(n: i64) -> Duration {
    Duration::from_millis(n as u64)
}

/// A stream record or a table change (`None`: a tombstone), in arrival order.
#[derive(Debug, Clone)]
enum TableEvent {
    Change(u8, Option<u32>),
    Record(u8, u32),
}

proptest! {
    #[test]
    fn inner_joins_match_the_reference(s in scenario()) {
        let make = || {
            InnerJoin::new(ms(s.within))
                .expect("valid")
                .with_lateness(ms(s.lateness))
                .expect("valid")
        };
        check(&make, &s, false)?;
    }

    #[test]
    fn left_joins_match_the_reference(s in scenario()) {
        let make = || {
            LeftJoin::new(ms(s.within))
                .expect("valid")
                .with_lateness(ms(s.lateness))
                .expect("valid")
        };
        check(&make, &s, true)?;
    }

    #[test]
    fn stream_table_joins_see_every_change_before_the_record(
        events in prop::collection::vec(
            prop_oneof![
                (0u8..4, prop::option::of(0u32..100)).prop_map(|(k, v)| TableEvent::Change(k, v)),
                (0u8..4, 0u32..100).prop_map(|(k, v)| TableEvent::Record(k, v)),
            ],
            0..80,
        ),
        restore in any::<prop::sample::Index>(),
    ) {
        let restore_at = restore.index(events.len() + 1);
        let mut table = Table::new();
        for (i, event) in events.iter().enumerate() {
            if i == restore_at {
                let mut bytes = Vec::new();
                table.save(&mut bytes).expect("encodes");
                table = Table::new();
                table.restore(&bytes).expect("decodes");
            }
            match *event {
                TableEvent::Change(key, value) => {
                    table.apply(key, value);
                }
                TableEvent::Record(key, left) => {
                    let latest = events[..i].iter().rev().find_map(|e| match *e {
                        TableEvent::Change(k, v) if k == key => Some(v),
                        _ => None,
                    });
                    prop_assert_eq!(table.enrich(key, left), (key, (left, latest.flatten())));
                }
            }
        }
    }
}
