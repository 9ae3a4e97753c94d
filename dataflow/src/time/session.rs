//! Session windows: per key, disjoint sessions that grow and merge as records come.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::marker::PhantomData;
use std::mem::size_of;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::aggregate::{Aggregator, SessionAggregator};
use super::error::{TimeError, millis};
use super::firing::{EarlyFiring, Firing, WindowResult};
use super::lateness::{Arrival, LateRecord};
use super::operator::{Checkpointed, WindowOperator};
use super::snapshot;
use super::timestamp::{Timestamp, Watermark};
use super::window::{Session, Window};
use crate::codec::CodecError;

/// The state of a keyed aggregation over [`Session`] windows.
///
/// A key's records closer together than the gap share a session `[first, last + gap)`; a
/// record that bridges two sessions merges them (with [`SessionAggregator::merge`]). A
/// session closes when the watermark reaches its end plus the allowed lateness: its final
/// result goes out and its state is dropped.
///
/// **Lateness.** A session accepts a record stamped at least `lateness` before the watermark
/// (`time >= watermark - lateness`), and no older one: an older record might belong to a
/// session that has already closed and sent its final result, and merging it into an open
/// one instead would make the results depend on arrival order. So every final result equals
/// what a batch computation over the accepted records gives, and every refused record comes
/// back as a [`LateRecord`].
///
/// ```
/// use std::time::Duration;
/// use dataflow::time::{Count, Session, SessionState, Timestamp, Watermark, Window, WindowOperator};
///
/// let at = |min: i64| Timestamp::from_millis(min * 60_000);
/// let mut visits = SessionState::new(Session::new(Duration::from_secs(30 * 60))?, Count);
/// let mut results = Vec::new();
/// for minute in [0, 10, 50, 45, 25] {
///     visits.add("ada", at(minute), (), |r| results.push(r)).unwrap();
/// }
/// // 0, 10 | 45, 50 were two sessions until 25 joined them.
/// assert_eq!(visits.open_windows(), 1);
/// visits.advance(Watermark::MAX, |r| results.push(r));
/// assert_eq!(results[0].window, Window::new(at(0), at(80)));
/// assert_eq!(results[0].value, 5);
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
pub struct SessionState<K, T, A: Aggregator<T>> {
    sessions: Session,
    aggregator: A,
    /// Allowed lateness, in milliseconds.
    lateness: i64,
    early: EarlyFiring,
    watermark: Watermark,
    /// Per key, its open sessions, disjoint and sorted by start (so by end too).
    keys: HashMap<K, Vec<Open<A::Acc>>>,
    /// Every open session by `(end, seq)`: the order in which they close.
    closing: BTreeMap<(Timestamp, u64), K>,
    /// Numbers sessions as they are created, for a deterministic emission order.
    next_seq: u64,
    _input: PhantomData<fn(T)>,
}

/// One open session of a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Open<Acc> {
    window: Window,
    acc: Acc,
    /// Records added since the last result (early firing).
    pending: u64,
    /// When the session was created; a merged session keeps its earliest part's number.
    seq: u64,
}

impl<K, T, A: SessionAggregator<T>> SessionState<K, T, A> {
    /// Sessions of `sessions`' gap aggregated with `aggregator` (which must merge: see
    /// [`SessionAggregator`]), with no allowed lateness and no early results.
    pub fn new(sessions: Session, aggregator: A) -> Self {
        Self {
            sessions,
            aggregator,
            lateness: 0,
            early: EarlyFiring::never(),
            watermark: Watermark::MIN,
            keys: HashMap::new(),
            closing: BTreeMap::new(),
            next_seq: 0,
            _input: PhantomData,
        }
    }

    /// Accepts records up to `lateness` behind the watermark (whole milliseconds), and keeps
    /// each session open that long past its end.
    pub fn with_lateness(mut self, lateness: Duration) -> Result<Self, TimeError> {
        self.lateness = millis("allowed lateness", lateness, false)?;
        Ok(self)
    }

    /// Sends partial results before the final one, as `early` says.
    pub fn with_early_firing(mut self, early: EarlyFiring) -> Self {
        self.early = early;
        self
    }
}

impl<K, T, A> WindowOperator<K, T> for SessionState<K, T, A>
where
    K: Hash + Eq + Clone,
    A: SessionAggregator<T>,
{
    type Output = A::Output;

    fn add<E>(
        &mut self,
        key: K,
        time: Timestamp,
        value: T,
        mut emit: E,
    ) -> Result<Arrival, LateRecord<(K, T)>>
    where
        E: FnMut(WindowResult<K, A::Output>),
    {
        if time < self.watermark.timestamp().minus(self.lateness) {
            return Err(LateRecord {
                timestamp: time,
                watermark: self.watermark,
                record: (key, value),
            });
        }
        let alone = self.sessions.window_of(time);
        let list = match self.keys.get_mut(&key) {
            Some(list) => list,
            None => self.keys.entry(key.clone()).or_default(),
        };
        // The sessions `alone` overlaps: a run, since they are disjoint and sorted.
        let first = list.partition_point(|s| s.window.end <= alone.start);
        let last = first + list[first..].partition_point(|s| s.window.start < alone.end);
        let at = if first == last {
            let seq = self.next_seq;
            self.next_seq += 1;
            list.insert(
                first,
                Open {
                    window: alone,
                    acc: self.aggregator.init(),
                    pending: 0,
                    seq,
                },
            );
            self.closing.insert((alone.end, seq), key.clone());
            first
        } else {
            let mut merged = list.drain(first + 1..last).collect::<Vec<_>>();
            let base = &mut list[first];
            let stored = self
                .closing
                .remove(&(base.window.end, base.seq))
                .expect("every open session is in the closing index");
            for later in merged.drain(..) {
                self.closing.remove(&(later.window.end, later.seq));
                self.aggregator.merge(&mut base.acc, later.acc);
                base.pending += later.pending;
                base.window = base.window.cover(&later.window);
            }
            base.window = base.window.cover(&alone);
            self.closing.insert((base.window.end, base.seq), stored);
            first
        };
        let session = &mut list[at];
        self.aggregator.add(&mut session.acc, value);
        session.pending += 1;
        if self.early.after_update(session.pending) {
            session.pending = 0;
            emit(WindowResult {
                key,
                window: session.window,
                value: self.aggregator.output(&session.acc),
                firing: Firing::Early,
            });
        }
        Ok(Arrival::of(time, self.watermark))
    }

    fn advance<E>(&mut self, watermark: Watermark, mut emit: E)
    where
        E: FnMut(WindowResult<K, A::Output>),
    {
        if watermark <= self.watermark {
            return;
        }
        let before = std::mem::replace(&mut self.watermark, watermark);
        let now = watermark.timestamp();
        while let Some(entry) = self.closing.first_entry() {
            let (end, seq) = *entry.key();
            if now < end.plus(self.lateness) {
                break;
            }
            let key = entry.remove();
            let list = self
                .keys
                .get_mut(&key)
                .expect("a session in the closing index has its key");
            let at = list
                .iter()
                .position(|s| s.seq == seq)
                .expect("a session in the closing index is open");
            let session = list.remove(at);
            if list.is_empty() {
                self.keys.remove(&key);
            }
            emit(WindowResult {
                key,
                window: session.window,
                value: self.aggregator.output(&session.acc),
                firing: Firing::Final,
            });
        }
        if self.early.period_crossed(before, watermark) {
            let mut dirty: Vec<(&K, &mut Open<A::Acc>)> = self
                .keys
                .iter_mut()
                .flat_map(|(key, list)| list.iter_mut().map(move |s| (key, s)))
                .filter(|(_, s)| s.pending > 0)
                .collect();
            dirty.sort_unstable_by_key(|(_, s)| (s.window.end, s.seq));
            for (key, session) in dirty {
                session.pending = 0;
                emit(WindowResult {
                    key: key.clone(),
                    window: session.window,
                    value: self.aggregator.output(&session.acc),
                    firing: Firing::Early,
                });
            }
        }
    }

    fn watermark(&self) -> Watermark {
        self.watermark
    }

    fn open_windows(&self) -> usize {
        self.closing.len()
    }

    fn state_bytes(&self) -> usize {
        // Per session: itself, its closing-index entry (key and B-tree slack), and per key a
        // hash table entry with its list.
        let session = size_of::<Open<A::Acc>>() + size_of::<((Timestamp, u64), K)>() * 3 / 2;
        let key = (size_of::<(K, Vec<Open<A::Acc>>)>() + 1) * 8 / 7;
        self.closing.len() * session + self.keys.len() * key
    }
}

/// What a checkpoint holds of a [`SessionState`], as saved (borrowed).
#[derive(Serialize)]
struct SavedRef<'a, K, Acc> {
    watermark: Watermark,
    next_seq: u64,
    keys: Vec<(&'a K, &'a Vec<Open<Acc>>)>,
}

/// What a checkpoint holds of a [`SessionState`], as restored.
#[derive(Deserialize)]
struct Saved<K, Acc> {
    watermark: Watermark,
    next_seq: u64,
    keys: Vec<(K, Vec<Open<Acc>>)>,
}

impl<K, T, A> Checkpointed for SessionState<K, T, A>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    A: Aggregator<T>,
    A::Acc: Serialize + DeserializeOwned,
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
        let saved: Saved<K, A::Acc> = snapshot::restore(bytes)?;
        let mut closing = BTreeMap::new();
        let mut keys = HashMap::with_capacity(saved.keys.len());
        for (key, list) in saved.keys {
            for session in &list {
                closing.insert((session.window.end, session.seq), key.clone());
            }
            keys.insert(key, list);
        }
        self.watermark = saved.watermark;
        self.next_seq = saved.next_seq;
        self.keys = keys;
        self.closing = closing;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Count, Reduce};

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn wm(ms: i64) -> Watermark {
        Watermark::new(at(ms))
    }

    fn w(start: i64, end: i64) -> Window {
        Window::new(at(start), at(end))
    }

    fn sessions(gap: u64) -> SessionState<&'static str, (), Count> {
        SessionState::new(
            Session::new(Duration::from_millis(gap)).expect("valid"),
            Count,
        )
    }

    type Results = Vec<WindowResult<&'static str, u64>>;

    fn add(s: &mut SessionState<&'static str, (), Count>, key: &'static str, time: i64) {
        s.add(key, at(time), (), |_| panic!("no early firing"))
            .expect("accepted");
    }

    #[test]
    fn records_closer_than_the_gap_share_a_session_and_one_gap_apart_do_not() {
        let mut s = sessions(10);
        add(&mut s, "a", 0);
        add(&mut s, "a", 9);
        add(&mut s, "a", 19);
        assert_eq!(s.open_windows(), 2, "19 is one gap after 9");
        let mut out = Results::new();
        s.advance(Watermark::MAX, |r| out.push(r));
        let got: Vec<(Window, u64)> = out.iter().map(|r| (r.window, r.value)).collect();
        assert_eq!(got, [(w(0, 19), 2), (w(19, 29), 1)]);
    }

    #[test]
    fn a_record_between_two_sessions_merges_them_and_their_counts() {
        let mut s = sessions(10);
        for time in [0, 30, 32, 15] {
            add(&mut s, "a", time);
        }
        add(&mut s, "b", 21);
        assert_eq!(s.open_windows(), 4);
        add(&mut s, "a", 22);
        assert_eq!(s.open_windows(), 3, "22 bridges [15, 25) and [30, 42)");
        let mut out = Results::new();
        s.advance(Watermark::MAX, |r| out.push(r));
        let got: Vec<(&str, Window, u64)> =
            out.iter().map(|r| (r.key, r.window, r.value)).collect();
        assert_eq!(
            got,
            [("a", w(0, 10), 1), ("b", w(21, 31), 1), ("a", w(15, 42), 4)]
        );
        assert_eq!((s.open_windows(), s.state_bytes()), (0, 0));
    }

    #[test]
    fn a_merged_session_reduces_earlier_parts_first() {
        let concat = Reduce::new(|a: String, b: String| a + &b);
        let mut s = SessionState::new(
            Session::new(Duration::from_millis(10)).expect("valid"),
            concat,
        );
        let mut out = Vec::new();
        for (time, v) in [(0, "a"), (18, "c"), (9, "b")] {
            s.add(1u8, at(time), v.to_owned(), |r| out.push(r))
                .expect("accepted");
        }
        s.advance(Watermark::MAX, |r| out.push(r));
        // [0, 10) absorbs [18, 28), then the bridging record is added.
        assert_eq!(out[0].value, "acb");
        assert_eq!(out[0].window, w(0, 28));
    }

    #[test]
    fn a_session_closes_at_its_end_plus_lateness_and_older_records_are_refused() {
        let mut s = sessions(10)
            .with_lateness(Duration::from_millis(5))
            .expect("valid");
        let mut out = Results::new();
        add(&mut s, "a", 0);
        add(&mut s, "a", 20);
        s.advance(wm(14), |r| out.push(r));
        assert!(out.is_empty(), "[0, 10) closes at 15");
        // 9 is 5 behind the watermark: accepted, late.
        assert_eq!(s.add("a", at(9), (), |r| out.push(r)), Ok(Arrival::Late));
        // 8 would fit [0, 19) too, but is more than 5 behind: refused, as a record of a
        // session that had closed would be.
        let late = s.add("a", at(8), (), |r| out.push(r)).unwrap_err();
        assert_eq!((late.timestamp, late.watermark), (at(8), wm(14)));
        s.advance(wm(24), |r| out.push(r));
        assert_eq!(out[0].window, w(0, 19));
        assert_eq!((out[0].value, out[0].firing), (2, Firing::Final));
        assert_eq!(s.open_windows(), 1);
    }

    #[test]
    fn early_results_follow_the_session_as_it_grows() {
        let mut s = sessions(10).with_early_firing(EarlyFiring::every_update());
        let mut out = Results::new();
        for time in [0, 5, 30] {
            s.add("a", at(time), (), |r| out.push(r)).expect("accepted");
        }
        let early: Vec<(Window, u64)> = out.iter().map(|r| (r.window, r.value)).collect();
        assert_eq!(early, [(w(0, 10), 1), (w(0, 15), 2), (w(30, 40), 1)]);
        assert!(out.iter().all(|r| r.firing == Firing::Early));
    }

    #[test]
    fn periodic_early_results_cover_sessions_updated_since() {
        let every = EarlyFiring::every_event_time(Duration::from_millis(100)).expect("valid");
        let mut s = sessions(1000).with_early_firing(every);
        let mut out = Results::new();
        add(&mut s, "b", 10);
        add(&mut s, "a", 5);
        s.advance(wm(50), |r| out.push(r));
        let keys: Vec<&str> = out.iter().map(|r| r.key).collect();
        assert_eq!(keys, ["a", "b"], "by session end, then creation");
        add(&mut s, "a", 60);
        s.advance(wm(99), |r| out.push(r));
        assert_eq!(out.len(), 2);
        s.advance(wm(100), |r| out.push(r));
        assert_eq!((out[2].key, out[2].value), ("a", 2));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn a_restored_state_goes_on_as_the_original_would() {
        let gap = Session::new(Duration::from_millis(10)).expect("valid");
        let mut original = SessionState::new(gap, Count);
        let mut sink = Vec::new();
        for (key, time) in [("a", 0), ("b", 3), ("a", 25), ("a", 8)] {
            original
                .add(key.to_owned(), at(time), (), |r| sink.push(r))
                .expect("accepted");
        }
        original.advance(wm(14), |r| sink.push(r));
        assert_eq!(sink.len(), 1, "b's [3, 13) closed");
        let mut bytes = Vec::new();
        original.save(&mut bytes).expect("encodes");
        let mut restored = SessionState::new(gap, Count);
        restored.restore(&bytes).expect("decodes");
        assert_eq!(restored.open_windows(), 2);

        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (s, out) in [(&mut original, &mut a), (&mut restored, &mut b)] {
            assert!(s.add("b".to_owned(), at(12), (), |r| out.push(r)).is_err());
            s.add("a".to_owned(), at(17), (), |r| out.push(r))
                .expect("bridges");
            s.advance(Watermark::MAX, |r| out.push(r));
        }
        assert_eq!(a, b);
        assert_eq!((a.len(), a[0].window, a[0].value), (1, w(0, 35), 4));
    }
}
