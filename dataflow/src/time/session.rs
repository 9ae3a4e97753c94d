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
