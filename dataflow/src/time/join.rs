//! The windowed stream-stream join: both sides buffered per key while a partner can still
//! come, pairs emitted as soon as both are there.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::mem::size_of;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::{TimeError, millis};
use super::lateness::{Arrival, LateRecord};
use super::operator::Checkpointed;
use super::snapshot;
use super::timestamp::{Timestamp, Watermark};
use crate::codec::CodecError;

/// The buffers of a windowed join of two streams keyed by `K`: a left record `l` and a right
/// record `r` of the same key join when their timestamps are at most `within` apart
/// (`|l.time - r.time| <= within`: Kafka Streams' `JoinWindows`, Flink's interval join).
///
/// Each pair goes out once, as soon as its second record arrives (no waiting for the
/// watermark). A record stays buffered while a partner can still arrive, that is until the
/// watermark passes its time plus `within` plus the allowed lateness; then it is dropped, and
/// in a [`LeftJoin`] a left record that never found a partner goes out as `(l, None)`.
///
/// **Lateness.** Either side accepts a record stamped at least `lateness` before the
/// watermark (`time >= watermark - lateness`), and refuses an older one (its partners may be
/// gone), handing it back as a [`LateRecord`]. So the pairs are exactly those of the accepted
/// records, whatever the arrival order.
struct JoinBuffer<K, L, R> {
    /// `within`, in milliseconds.
    within: i64,
    /// Allowed lateness, in milliseconds.
    lateness: i64,
    watermark: Watermark,
    keys: HashMap<K, Sides<L, R>>,
    /// Every buffered record by `(time, seq)`: the order in which they expire.
    expiry: BTreeMap<(Timestamp, u64), (K, Side)>,
    next_seq: u64,
}

/// Which input a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Side {
    Left,
    Right,
}

/// The buffered records of one key, each side in arrival order.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sides<L, R> {
    left: Vec<Buffered<L>>,
    right: Vec<Buffered<R>>,
}

impl<L, R> Default for Sides<L, R> {
    fn default() -> Self {
        Self {
            left: Vec::new(),
            right: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Buffered<V> {
    time: Timestamp,
    seq: u64,
    value: V,
    /// Whether it joined a partner yet.
    matched: bool,
}

impl<K: Hash + Eq + Clone, L, R> JoinBuffer<K, L, R> {
    fn new(within: Duration) -> Result<Self, TimeError> {
        Ok(Self {
            within: millis("join window", within, false)?,
            lateness: 0,
            watermark: Watermark::MIN,
            keys: HashMap::new(),
            expiry: BTreeMap::new(),
            next_seq: 0,
        })
    }

    fn too_late(&self, time: Timestamp) -> bool {
        time < self.watermark.timestamp().minus(self.lateness)
    }

    /// The buffers of `key`, created if needed (cloning the key only then).
    fn sides(&mut self, key: &K) -> &mut Sides<L, R> {
        if !self.keys.contains_key(key) {
            self.keys.insert(key.clone(), Sides::default());
        }
        self.keys.get_mut(key).expect("just inserted")
    }

    fn add_left(&mut self, key: K, time: Timestamp, value: L, mut pair: impl FnMut(&K, &L, &R)) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let within = self.within;
        let sides = self.sides(&key);
        let mut matched = false;
        for r in &mut sides.right {
            if r.time.as_millis().abs_diff(time.as_millis()) <= within as u64 {
                pair(&key, &value, &r.value);
                r.matched = true;
                matched = true;
            }
        }
        sides.left.push(Buffered {
            time,
            seq,
            value,
            matched,
        });
        self.expiry.insert((time, seq), (key, Side::Left));
    }

    fn add_right(&mut self, key: K, time: Timestamp, value: R, mut pair: impl FnMut(&K, &L, &R)) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let within = self.within;
        let sides = self.sides(&key);
        let mut matched = false;
        for l in &mut sides.left {
            if l.time.as_millis().abs_diff(time.as_millis()) <= within as u64 {
                pair(&key, &l.value, &value);
                l.matched = true;
                matched = true;
            }
        }
        sides.right.push(Buffered {
            time,
            seq,
            value,
            matched,
        });
        self.expiry.insert((time, seq), (key, Side::Right));
    }

    /// Moves the watermark; hands every left record that expires unmatched to `unmatched`.
    fn advance(&mut self, watermark: Watermark, mut unmatched: impl FnMut(K, L)) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let now = watermark.timestamp();
        // A record can meet a partner stamped up to `within` after it, accepted while the
        // watermark is at most `lateness` past that: it expires once the watermark is beyond.
        while let Some(entry) = self.expiry.first_entry() {
            let (time, seq) = *entry.key();
            if now <= time.plus(self.within).plus(self.lateness) {
                break;
            }
            let (key, side) = entry.remove();
            let sides = self
                .keys
                .get_mut(&key)
                .expect("a buffered record has its key");
            let left = match side {
                Side::Left => {
                    let at = sides
                        .left
                        .binary_search_by_key(&seq, |b| b.seq)
                        .expect("an expiring record is buffered");
                    Some(sides.left.remove(at))
                }
                Side::Right => {
                    let at = sides
                        .right
                        .binary_search_by_key(&seq, |b| b.seq)
                        .expect("an expiring record is buffered");
                    sides.right.remove(at);
                    None
                }
            };
            if sides.left.is_empty() && sides.right.is_empty() {
                self.keys.remove(&key);
            }
            if let Some(left) = left.filter(|l| !l.matched) {
                unmatched(key, left.value);
            }
        }
    }

    fn state_bytes(&self) -> usize {
        let record = size_of::<Buffered<L>>().max(size_of::<Buffered<R>>())
            + size_of::<((Timestamp, u64), (K, Side))>() * 3 / 2;
        let key = (size_of::<(K, Sides<L, R>)>() + 1) * 8 / 7;
        self.expiry.len() * record + self.keys.len() * key
    }
}

/// What a checkpoint holds of a join, as saved (borrowed).
#[derive(Serialize)]
struct SavedRef<'a, K, L, R> {
    watermark: Watermark,
    next_seq: u64,
    keys: Vec<(&'a K, &'a Sides<L, R>)>,
}

/// What a checkpoint holds of a join, as restored.
#[derive(Deserialize)]
struct Saved<K, L, R> {
    watermark: Watermark,
    next_seq: u64,
    keys: Vec<(K, Sides<L, R>)>,
}

impl<K, L, R> JoinBuffer<K, L, R>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    L: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let saved = SavedRef {
            watermark: self.watermark,
            next_seq: self.next_seq,
            keys: self.keys.iter().collect(),
        };
        snapshot::save(&saved, out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let saved: Saved<K, L, R> = snapshot::restore(bytes)?;
        let mut expiry = BTreeMap::new();
        let mut keys = HashMap::with_capacity(saved.keys.len());
        for (key, sides) in saved.keys {
            for l in &sides.left {
                expiry.insert((l.time, l.seq), (key.clone(), Side::Left));
            }
            for r in &sides.right {
                expiry.insert((r.time, r.seq), (key.clone(), Side::Right));
            }
            keys.insert(key, sides);
        }
        self.watermark = saved.watermark;
        self.next_seq = saved.next_seq;
        self.keys = keys;
        self.expiry = expiry;
        Ok(())
    }
}

macro_rules! join_common {
    ($name:ident) => {
        impl<K: Hash + Eq + Clone, L: Clone, R: Clone> $name<K, L, R> {
            /// A join of records at most `within` apart (whole milliseconds), with no allowed
            /// lateness.
            pub fn new(within: Duration) -> Result<Self, TimeError> {
                Ok(Self(JoinBuffer::new(within)?))
            }

            /// Accepts records up to `lateness` behind the watermark (whole milliseconds),
            /// and keeps records buffered that much longer.
            pub fn with_lateness(mut self, lateness: Duration) -> Result<Self, TimeError> {
                self.0.lateness = millis("allowed lateness", lateness, false)?;
                Ok(self)
            }

            /// The watermark the join stands at.
            pub fn watermark(&self) -> Watermark {
                self.0.watermark
            }

            /// The records buffered, both sides.
            pub fn buffered(&self) -> usize {
                self.0.expiry.len()
            }

            /// An estimate of the state's size in bytes: the records, keys and index
            /// entries themselves, not what they own on the heap.
            pub fn state_bytes(&self) -> usize {
                self.0.state_bytes()
            }
        }

        impl<K, L, R> Checkpointed for $name<K, L, R>
        where
            K: Hash + Eq + Clone + Serialize + DeserializeOwned,
            L: Serialize + DeserializeOwned,
            R: Serialize + DeserializeOwned,
        {
            fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
                self.0.save(out)
            }

            fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
                self.0.restore(bytes)
            }
        }
    };
}

/// A windowed inner join of two streams keyed by `K`: `(K, (L, R))` for every left and right
/// record of a key at most `within` apart, as soon as both are there.
///
/// ```
/// use std::time::Duration;
/// use dataflow::time::{InnerJoin, Timestamp, Watermark};
///
/// let at = Timestamp::from_millis;
/// let mut join = InnerJoin::new(Duration::from_secs(5))?;
/// let mut out = Vec::new();
/// join.add_left("card-1", at(10_000), "auth", |p| out.push(p)).unwrap();
/// join.add_right("card-1", at(13_000), "capture", |p| out.push(p)).unwrap();
/// join.add_right("card-1", at(16_000), "refund", |p| out.push(p)).unwrap(); // 6 s apart
/// assert_eq!(out, [("card-1", ("auth", "capture"))]);
///
/// join.advance(Watermark::new(at(22_000)), |p| out.push(p));
/// assert_eq!(join.buffered(), 0);
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
pub struct InnerJoin<K, L, R>(JoinBuffer<K, L, R>);

join_common!(InnerJoin);

impl<K: Hash + Eq + Clone, L: Clone, R: Clone> InnerJoin<K, L, R> {
    /// A left record: joins the buffered right records of its key within the window, then
    /// waits for more. Too late, it comes back as a [`LateRecord`].
    pub fn add_left(
        &mut self,
        key: K,
        time: Timestamp,
        value: L,
        mut emit: impl FnMut((K, (L, R))),
    ) -> Result<Arrival, LateRecord<(K, L)>> {
        if self.0.too_late(time) {
            return Err(late(&self.0, key, time, value));
        }
        let arrival = Arrival::of(time, self.0.watermark);
        self.0.add_left(key, time, value, |k, l, r| {
            emit((k.clone(), (l.clone(), r.clone())))
        });
        Ok(arrival)
    }

    /// A right record: joins the buffered left records of its key within the window, then
    /// waits for more. Too late, it comes back as a [`LateRecord`].
    pub fn add_right(
        &mut self,
        key: K,
        time: Timestamp,
        value: R,
        mut emit: impl FnMut((K, (L, R))),
    ) -> Result<Arrival, LateRecord<(K, R)>> {
        if self.0.too_late(time) {
            return Err(late(&self.0, key, time, value));
        }
        let arrival = Arrival::of(time, self.0.watermark);
        self.0.add_right(key, time, value, |k, l, r| {
            emit((k.clone(), (l.clone(), r.clone())))
        });
        Ok(arrival)
    }

    /// Moves the watermark (a lower one is ignored) and drops the records no partner can
    /// join any more. An inner join emits nothing here; `emit` is there so that both joins
    /// are driven the same way.
    pub fn advance(&mut self, watermark: Watermark, _emit: impl FnMut((K, (L, R)))) {
        self.0.advance(watermark, |_, _| {});
    }
}

/// A windowed left join of two streams keyed by `K`: `(K, (L, Some(R)))` for every left and
/// right record of a key at most `within` apart, as soon as both are there, and `(K, (L,
/// None))` for a left record that found no partner by the time it expires.
///
/// ```
/// use std::time::Duration;
/// use dataflow::time::{LeftJoin, Timestamp, Watermark};
///
/// let at = Timestamp::from_millis;
/// let mut join = LeftJoin::new(Duration::from_secs(5))?;
/// let mut out = Vec::new();
/// join.add_left("order-1", at(10_000), 30, |p| out.push(p)).unwrap();
/// join.add_left("order-2", at(11_000), 45, |p| out.push(p)).unwrap();
/// join.add_right("order-1", at(12_000), "paid", |p| out.push(p)).unwrap();
/// assert_eq!(out, [("order-1", (30, Some("paid")))]);
///
/// // order-2 can be matched until the watermark passes 11 s + 5 s.
/// join.advance(Watermark::new(at(16_000)), |p| out.push(p));
/// assert_eq!(out.len(), 1);
/// join.advance(Watermark::new(at(16_001)), |p| out.push(p));
/// assert_eq!(out[1], ("order-2", (45, None)));
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
pub struct LeftJoin<K, L, R>(JoinBuffer<K, L, R>);

join_common!(LeftJoin);

impl<K: Hash + Eq + Clone, L: Clone, R: Clone> LeftJoin<K, L, R> {
    /// A left record: joins the buffered right records of its key within the window, then
    /// waits for more. Too late, it comes back as a [`LateRecord`].
    pub fn add_left(
        &mut self,
        key: K,
        time: Timestamp,
        value: L,
        mut emit: impl FnMut((K, (L, Option<R>))),
    ) -> Result<Arrival, LateRecord<(K, L)>> {
        if self.0.too_late(time) {
            return Err(late(&self.0, key, time, value));
        }
        let arrival = Arrival::of(time, self.0.watermark);
        self.0.add_left(key, time, value, |k, l, r| {
            emit((k.clone(), (l.clone(), Some(r.clone()))))
        });
        Ok(arrival)
    }

    /// A right record: joins the buffered left records of its key within the window, then
    /// waits for more. Too late, it comes back as a [`LateRecord`].
    pub fn add_right(
        &mut self,
        key: K,
        time: Timestamp,
        value: R,
        mut emit: impl FnMut((K, (L, Option<R>))),
    ) -> Result<Arrival, LateRecord<(K, R)>> {
        if self.0.too_late(time) {
            return Err(late(&self.0, key, time, value));
        }
        let arrival = Arrival::of(time, self.0.watermark);
        self.0.add_right(key, time, value, |k, l, r| {
            emit((k.clone(), (l.clone(), Some(r.clone()))))
        });
        Ok(arrival)
    }

    /// Moves the watermark (a lower one is ignored), drops the records no partner can join
    /// any more, and emits `(key, (l, None))` for each left one among them that never joined,
    /// in the order of their timestamps.
    pub fn advance(&mut self, watermark: Watermark, mut emit: impl FnMut((K, (L, Option<R>)))) {
        self.0.advance(watermark, |k, l| emit((k, (l, None))));
    }
}

fn late<K, L, R, V>(
    buffer: &JoinBuffer<K, L, R>,
    key: K,
    time: Timestamp,
    value: V,
) -> LateRecord<(K, V)> {
    LateRecord {
        timestamp: time,
        watermark: buffer.watermark,
        record: (key, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn wm(ms: i64) -> Watermark {
        Watermark::new(at(ms))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn records_join_when_at_most_the_window_apart_either_way() {
        let mut j = InnerJoin::new(ms(10)).expect("valid");
        let mut out = Vec::new();
        j.add_left(1u8, at(100), 'a', |p| out.push(p))
            .expect("accepted");
        for time in [89, 90, 110, 111] {
            j.add_right(1, at(time), time, |p| out.push(p))
                .expect("accepted");
        }
        j.add_right(2, at(100), 0, |p| out.push(p))
            .expect("accepted");
        assert_eq!(out, [(1, ('a', 90)), (1, ('a', 110))]);
        // A second left record meets every buffered right record of its key.
        j.add_left(1, at(95), 'b', |p| out.push(p))
            .expect("accepted");
        assert_eq!(out[2..], [(1, ('b', 89)), (1, ('b', 90))]);
        assert_eq!(j.buffered(), 7);
    }

    #[test]
    fn records_expire_once_no_partner_can_come_and_the_state_empties() {
        let mut j = InnerJoin::new(ms(10)).expect("valid");
        let mut out = Vec::new();
        j.add_left("k", at(100), 1, |p| out.push(p))
            .expect("accepted");
        j.add_right("k", at(105), 2, |p| out.push(p))
            .expect("accepted");
        j.advance(wm(110), |p| out.push(p));
        assert_eq!(
            j.buffered(),
            2,
            "a right record stamped 110 can still join 100"
        );
        j.advance(wm(111), |p| out.push(p));
        assert_eq!(j.buffered(), 1);
        j.advance(wm(116), |p| out.push(p));
        assert_eq!((j.buffered(), j.state_bytes()), (0, 0));
        assert_eq!(out, [("k", (1, 2))]);
    }

    #[test]
    fn a_left_join_emits_unmatched_left_records_when_they_expire() {
        let mut j = LeftJoin::new(ms(10))
            .expect("valid")
            .with_lateness(ms(5))
            .expect("valid");
        let mut out = Vec::new();
        j.add_left("x", at(0), 'a', |p| out.push(p))
            .expect("accepted");
        j.add_left("y", at(1), 'b', |p| out.push(p))
            .expect("accepted");
        j.add_right("y", at(11), 'B', |p| out.push(p))
            .expect("accepted");
        j.add_right("z", at(2), 'Z', |p| out.push(p))
            .expect("accepted");
        assert_eq!(out, [("y", ('b', Some('B')))]);
        j.advance(wm(15), |p| out.push(p));
        assert_eq!(
            out.len(),
            1,
            "x can still meet a right record stamped 10, up to 5 late"
        );
        j.advance(wm(16), |p| out.push(p));
        assert_eq!(out[1..], [("x", ('a', None))]);
        j.advance(Watermark::MAX, |p| out.push(p));
        assert_eq!(
            out.len(),
            2,
            "y was matched; right records never go out alone"
        );
    }

    #[test]
    fn a_record_more_than_the_lateness_behind_the_watermark_is_handed_back() {
        let mut j = LeftJoin::<&str, u32, u32>::new(ms(10))
            .expect("valid")
            .with_lateness(ms(5))
            .expect("valid");
        j.advance(wm(100), |_| {});
        assert_eq!(j.add_left("k", at(95), 1, |_| {}), Ok(Arrival::Late));
        assert_eq!(j.add_right("k", at(100), 1, |_| {}), Ok(Arrival::OnTime));
        let late = j.add_right("k", at(94), 7, |_| {}).unwrap_err();
        assert_eq!(late.record, ("k", 7));
        assert_eq!(late.watermark, wm(100));
        assert!(j.add_left("k", at(94), 7, |_| {}).is_err());
        assert_eq!(j.buffered(), 2);
    }

    #[test]
    fn a_restored_join_goes_on_as_the_original_would() {
        let mut original = LeftJoin::new(ms(10)).expect("valid");
        let mut sink = Vec::new();
        original
            .add_left("a".to_owned(), at(0), 1u32, |p| sink.push(p))
            .expect("ok");
        original
            .add_left("b".to_owned(), at(5), 2, |p| sink.push(p))
            .expect("ok");
        original
            .add_right("a".to_owned(), at(8), 'r', |p| sink.push(p))
            .expect("ok");
        original.advance(wm(4), |p| sink.push(p));
        let mut bytes = Vec::new();
        original.save(&mut bytes).expect("encodes");
        let mut restored = LeftJoin::new(ms(10)).expect("valid");
        restored.restore(&bytes).expect("decodes");
        assert_eq!(restored.buffered(), 3);

        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (j, out) in [(&mut original, &mut x), (&mut restored, &mut y)] {
            assert!(
                j.add_right("b".to_owned(), at(3), 'l', |p| out.push(p))
                    .is_err()
            );
            j.add_right("b".to_owned(), at(15), 's', |p| out.push(p))
                .expect("ok");
            j.add_left("a".to_owned(), at(9), 3, |p| out.push(p))
                .expect("ok");
            j.advance(Watermark::MAX, |p| out.push(p));
        }
        assert_eq!(x, y);
        assert_eq!(
            x,
            [
                ("b".to_owned(), (2, Some('s'))),
                ("a".to_owned(), (3, Some('r'))),
            ]
        );
    }
}
