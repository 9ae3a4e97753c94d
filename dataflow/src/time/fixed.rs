//! Windows that never merge (tumbling, hopping): per window, an accumulator per key.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::marker::PhantomData;
use std::mem::size_of;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::aggregate::Aggregator;
use super::error::{TimeError, millis};
use super::firing::{EarlyFiring, Firing, WindowResult};
use super::lateness::{Arrival, LateRecord};
use super::operator::{Checkpointed, WindowOperator};
use super::snapshot;
use super::timestamp::{Timestamp, Watermark};
use super::window::{Window, WindowAssigner};
use crate::codec::CodecError;

/// The state of a keyed window aggregation over windows that never merge: [`Tumbling`],
/// [`Hopping`], or your own [`WindowAssigner`].
///
/// A record goes into each of its windows that is still open: a window `[start, end)` is open
/// until the watermark reaches `end + lateness`, when its final result goes out and its state
/// is dropped. A record whose windows are all closed comes back as a [`LateRecord`]; a hopping
/// record whose oldest windows closed still counts in the others.
///
/// ```
/// use std::time::Duration;
/// use dataflow::time::{Count, Firing, Timestamp, Tumbling, Watermark, Window, WindowOperator, WindowState};
///
/// let at = Timestamp::from_millis;
/// let mut clicks = WindowState::new(Tumbling::new(Duration::from_secs(60))?, Count)
///     .with_lateness(Duration::from_secs(10))?;
/// let mut results = Vec::new();
/// clicks.add("home", at(1_000), (), |r| results.push(r)).unwrap();
/// clicks.add("home", at(59_000), (), |r| results.push(r)).unwrap();
/// clicks.add("cart", at(61_000), (), |r| results.push(r)).unwrap();
///
/// clicks.advance(Watermark::new(at(65_000)), |r| results.push(r)); // within the lateness
/// assert!(results.is_empty());
/// clicks.add("home", at(30_000), (), |r| results.push(r)).unwrap(); // late, still counted
///
/// clicks.advance(Watermark::new(at(70_000)), |r| results.push(r));
/// assert_eq!(results.len(), 1);
/// assert_eq!((results[0].key, results[0].value), ("home", 3));
/// assert_eq!(results[0].window, Window::new(at(0), at(60_000)));
/// assert_eq!(results[0].firing, Firing::Final);
///
/// let late = clicks.add("home", at(2_000), (), |r| results.push(r)).unwrap_err();
/// assert_eq!(late.record, ("home", ()));
/// assert_eq!(clicks.open_windows(), 1); // "cart" in [60 s, 120 s)
/// # Ok::<(), dataflow::time::TimeError>(())
/// ```
///
/// [`Tumbling`]: super::Tumbling
/// [`Hopping`]: super::Hopping
pub struct WindowState<K, T, A: Aggregator<T>, W> {
    assigner: W,
    aggregator: A,
    /// Allowed lateness, in milliseconds.
    lateness: i64,
    early: EarlyFiring,
    watermark: Watermark,
    windows: Windows<K, A::Acc>,
    _input: PhantomData<fn(T)>,
}

/// The keys of one window and their slots.
type Slots<K, Acc> = HashMap<K, Slot<Acc>>;

/// The open windows.
struct Windows<K, Acc> {
    /// By `(end, start)`, so that they close from the front whatever their sizes; per
    /// window, the keys that have a record in it.
    by_end: BTreeMap<(Timestamp, Timestamp), Slots<K, Acc>>,
    /// The number of slots, over all windows.
    open: usize,
    /// The order in which keys entered their windows, for a deterministic emission order.
    next_seq: u64,
}

/// One key in one window.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Slot<Acc> {
    acc: Acc,
    /// Records added since the last result (early firing).
    pending: u64,
    /// When the key entered the window, among all keys and windows.
    seq: u64,
}

impl<K, T, A: Aggregator<T>, W: WindowAssigner> WindowState<K, T, A, W> {
    /// Windows from `assigner` aggregated with `aggregator`, with no allowed lateness and no
    /// early results.
    pub fn new(assigner: W, aggregator: A) -> Self {
        Self {
            assigner,
            aggregator,
            lateness: 0,
            early: EarlyFiring::never(),
            watermark: Watermark::MIN,
            windows: Windows {
                by_end: BTreeMap::new(),
                open: 0,
                next_seq: 0,
            },
            _input: PhantomData,
        }
    }

    /// Keeps each window open `lateness` past its end (whole milliseconds): records up to
    /// that late still update it, and its final result waits for it.
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

impl<K: Hash + Eq + Clone, Acc> Windows<K, Acc> {
    /// Adds `value` to `key`'s slot in `window`, and fires it early if due.
    fn add<T, A>(
        &mut self,
        aggregator: &mut A,
        early: EarlyFiring,
        window: Window,
        key: &K,
        value: T,
        emit: &mut impl FnMut(WindowResult<K, A::Output>),
    ) where
        A: Aggregator<T, Acc = Acc>,
    {
        let slots = self.by_end.entry((window.end, window.start)).or_default();
        let slot = match slots.get_mut(key) {
            Some(slot) => slot,
            None => {
                self.open += 1;
                let seq = self.next_seq;
                self.next_seq += 1;
                let acc = aggregator.init();
                slots.entry(key.clone()).or_insert(Slot {
                    acc,
                    pending: 0,
                    seq,
                })
            }
        };
        aggregator.add(&mut slot.acc, value);
        slot.pending += 1;
        if early.after_update(slot.pending) {
            slot.pending = 0;
            emit(WindowResult {
                key: key.clone(),
                window,
                value: aggregator.output(&slot.acc),
                firing: Firing::Early,
            });
        }
    }
}

impl<K, T, A, W> WindowOperator<K, T> for WindowState<K, T, A, W>
where
    K: Hash + Eq + Clone,
    T: Clone,
    A: Aggregator<T>,
    W: WindowAssigner,
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
        let now = self.watermark.timestamp();
        // Every open window but the last gets a clone of the value; the last gets the value.
        let mut last: Option<Window> = None;
        for window in self.assigner.assign(time) {
            if now >= window.end.plus(self.lateness) {
                continue;
            }
            if let Some(previous) = last.replace(window) {
                self.windows.add(
                    &mut self.aggregator,
                    self.early,
                    previous,
                    &key,
                    value.clone(),
                    &mut emit,
                );
            }
        }
        let Some(window) = last else {
            return Err(LateRecord {
                timestamp: time,
                watermark: self.watermark,
                record: (key, value),
            });
        };
        self.windows.add(
            &mut self.aggregator,
            self.early,
            window,
            &key,
            value,
            &mut emit,
        );
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
        while let Some(entry) = self.windows.by_end.first_entry() {
            let (end, start) = *entry.key();
            if now < end.plus(self.lateness) {
                break;
            }
            let slots = entry.remove();
            self.windows.open -= slots.len();
            let window = Window::new(start, end);
            for (key, slot) in in_order(slots) {
                emit(WindowResult {
                    key,
                    window,
                    value: self.aggregator.output(&slot.acc),
                    firing: Firing::Final,
                });
            }
        }
        if self.early.period_crossed(before, watermark) {
            for (&(end, start), slots) in &mut self.windows.by_end {
                let window = Window::new(start, end);
                let mut dirty: Vec<(&K, &mut Slot<A::Acc>)> =
                    slots.iter_mut().filter(|(_, s)| s.pending > 0).collect();
                dirty.sort_unstable_by_key(|(_, s)| s.seq);
                for (key, slot) in dirty {
                    slot.pending = 0;
                    emit(WindowResult {
                        key: key.clone(),
                        window,
                        value: self.aggregator.output(&slot.acc),
                        firing: Firing::Early,
                    });
                }
            }
        }
    }

    fn watermark(&self) -> Watermark {
        self.watermark
    }

    fn open_windows(&self) -> usize {
        self.windows.open
    }

    fn state_bytes(&self) -> usize {
        // A hash table entry, with its control byte and the table's 7/8 load factor; a
        // B-tree entry per window with the table's own header.
        let slot = (size_of::<(K, Slot<A::Acc>)>() + 1) * 8 / 7;
        let window = size_of::<((Timestamp, Timestamp), Slots<K, A::Acc>)>();
        self.windows.open * slot + self.windows.by_end.len() * window
    }
}

/// A window's slots in the order their keys entered it.
fn in_order<K, Acc>(slots: Slots<K, Acc>) -> Vec<(K, Slot<Acc>)> {
    let mut slots: Vec<(K, Slot<Acc>)> = slots.into_iter().collect();
    slots.sort_unstable_by_key(|(_, s)| s.seq);
    slots
}

/// A window and its slots, as saved.
type SavedWindow<'a, K, Acc> = (Window, Vec<(&'a K, &'a Slot<Acc>)>);

/// What a checkpoint holds of a [`WindowState`], as saved (borrowed).
#[derive(Serialize)]
struct SavedRef<'a, K, Acc> {
    watermark: Watermark,
    next_seq: u64,
    windows: Vec<SavedWindow<'a, K, Acc>>,
}

/// A key and its slot, as restored.
type SavedSlot<K, Acc> = (K, Slot<Acc>);

/// What a checkpoint holds of a [`WindowState`], as restored.
#[derive(Deserialize)]
struct Saved<K, Acc> {
    watermark: Watermark,
    next_seq: u64,
    windows: Vec<(Window, Vec<SavedSlot<K, Acc>>)>,
}

impl<K, T, A, W> Checkpointed for WindowState<K, T, A, W>
where
    K: Hash + Eq + Serialize + DeserializeOwned,
    A: Aggregator<T>,
    A::Acc: Serialize + DeserializeOwned,
{
    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let windows = self
            .windows
            .by_end
            .iter()
            .map(|(&(end, start), slots)| (Window::new(start, end), slots.iter().collect()))
            .collect();
        let saved = SavedRef {
            watermark: self.watermark,
            next_seq: self.windows.next_seq,
            windows,
        };
        snapshot::save(&saved, out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError> {
        let saved: Saved<K, A::Acc> = snapshot::restore(bytes)?;
        let mut by_end = BTreeMap::new();
        let mut open = 0;
        for (window, slots) in saved.windows {
            open += slots.len();
            by_end.insert((window.end, window.start), slots.into_iter().collect());
        }
        self.watermark = saved.watermark;
        self.windows = Windows {
            by_end,
            open,
            next_seq: saved.next_seq,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Count, Hopping, Reduce, Tumbling};

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn wm(ms: i64) -> Watermark {
        Watermark::new(at(ms))
    }

    fn w(start: i64, end: i64) -> Window {
        Window::new(at(start), at(end))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    type Results = Vec<WindowResult<&'static str, u64>>;

    fn counts(size: u64) -> WindowState<&'static str, (), Count, Tumbling> {
        WindowState::new(Tumbling::new(ms(size)).expect("valid"), Count)
    }

    fn finals(results: &Results) -> Vec<(&'static str, Window, u64)> {
        results
            .iter()
            .filter(|r| r.firing == Firing::Final)
            .map(|r| (r.key, r.window, r.value))
            .collect()
    }

    #[test]
    fn a_window_sends_one_final_result_when_the_watermark_reaches_its_end() {
        let mut s = counts(10);
        let mut out = Results::new();
        for (key, time) in [("b", 3), ("a", 1), ("b", 9), ("a", 12)] {
            assert_eq!(
                s.add(key, at(time), (), |r| out.push(r)),
                Ok(Arrival::OnTime)
            );
        }
        s.advance(wm(9), |r| out.push(r));
        assert!(
            out.is_empty(),
            "[0, 10) is not complete before the watermark reaches 10"
        );
        s.advance(wm(10), |r| out.push(r));
        // Keys in the order they entered the window.
        assert_eq!(finals(&out), [("b", w(0, 10), 2), ("a", w(0, 10), 1)]);
        assert_eq!(s.open_windows(), 1);
        s.advance(wm(10), |r| out.push(r));
        s.advance(wm(5), |r| out.push(r));
        assert_eq!(
            out.len(),
            2,
            "no second result; a lower watermark is ignored"
        );
        assert_eq!(s.watermark(), wm(10));
        s.advance(Watermark::MAX, |r| out.push(r));
        assert_eq!(finals(&out)[2], ("a", w(10, 20), 1));
        assert_eq!((s.open_windows(), s.state_bytes()), (0, 0));
    }

    #[test]
    fn lateness_keeps_a_window_open_for_late_records_then_refuses_them() {
        let mut s = counts(10).with_lateness(ms(5)).expect("valid");
        let mut out = Results::new();
        s.add("a", at(1), (), |r| out.push(r)).expect("on time");
        s.advance(wm(14), |r| out.push(r));
        assert_eq!(s.add("a", at(2), (), |r| out.push(r)), Ok(Arrival::Late));
        assert!(out.is_empty());
        s.advance(wm(15), |r| out.push(r));
        assert_eq!(finals(&out), [("a", w(0, 10), 2)]);
        let late = s.add("a", at(9), (), |r| out.push(r)).unwrap_err();
        assert_eq!(
            late,
            LateRecord {
                timestamp: at(9),
                watermark: wm(15),
                record: ("a", ())
            }
        );
        assert_eq!(s.open_windows(), 0, "a refused record opens nothing");
        // A record behind the watermark whose window is still open is only late.
        assert_eq!(s.add("a", at(12), (), |r| out.push(r)), Ok(Arrival::Late));
    }

    #[test]
    fn a_hopping_record_counts_in_its_open_windows_only() {
        let hopping = Hopping::new(ms(10), ms(5)).expect("valid");
        let mut s: WindowState<&str, (), _, _> = WindowState::new(hopping, Count);
        let mut out = Results::new();
        s.add("a", at(7), (), |r| out.push(r)).expect("on time");
        assert_eq!(s.open_windows(), 2, "[0, 10) and [5, 15)");
        s.advance(wm(10), |r| out.push(r));
        assert_eq!(finals(&out), [("a", w(0, 10), 1)]);
        // 8 belongs to [0, 10), closed, and [5, 15), open.
        assert_eq!(s.add("a", at(8), (), |r| out.push(r)), Ok(Arrival::Late));
        s.advance(Watermark::MAX, |r| out.push(r));
        assert_eq!(finals(&out)[1], ("a", w(5, 15), 2));
    }

    #[test]
    fn early_results_come_every_n_updates_and_the_final_one_still_comes() {
        let mut s = counts(10).with_early_firing(EarlyFiring::every_updates(2).expect("valid"));
        let mut out = Results::new();
        for time in [1, 2, 3, 4, 5] {
            s.add("a", at(time), (), |r| out.push(r)).expect("on time");
        }
        let early: Vec<u64> = out.iter().map(|r| r.value).collect();
        assert_eq!(early, [2, 4]);
        assert!(out.iter().all(|r| r.firing == Firing::Early));
        s.advance(wm(10), |r| out.push(r));
        assert_eq!(finals(&out), [("a", w(0, 10), 5)]);
    }

    #[test]
    fn periodic_early_results_go_to_windows_updated_since_their_last_one() {
        let every = EarlyFiring::every_event_time(ms(4)).expect("valid");
        let mut s = counts(100).with_early_firing(every);
        let mut out = Results::new();
        s.add("a", at(1), (), |r| out.push(r)).expect("on time");
        s.add("b", at(2), (), |r| out.push(r)).expect("on time");
        s.advance(wm(3), |r| out.push(r));
        let keys: Vec<&str> = out.iter().map(|r| r.key).collect();
        assert_eq!(keys, ["a", "b"], "the first watermark crosses a period");
        s.advance(wm(4), |r| out.push(r));
        assert_eq!(out.len(), 2, "nothing updated since");
        s.add("b", at(5), (), |r| out.push(r)).expect("on time");
        s.advance(wm(7), |r| out.push(r));
        assert_eq!(out.len(), 2, "no period crossed between 4 and 7");
        s.advance(wm(8), |r| out.push(r));
        assert_eq!(
            (out[2].key, out[2].value, out[2].firing),
            ("b", 2, Firing::Early)
        );
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn a_restored_state_goes_on_as_the_original_would() {
        let reduce = || Reduce::new(|a: u64, b: u64| a + b);
        let hopping = Hopping::new(ms(10), ms(5)).expect("valid");
        let mut original = WindowState::new(hopping, reduce())
            .with_lateness(ms(3))
            .expect("valid");
        let mut sink = Vec::new();
        for (key, time, value) in [("a", 1, 1), ("b", 6, 10), ("a", 12, 100)] {
            original
                .add(key.to_owned(), at(time), value, |r| sink.push(r))
                .expect("on time");
        }
        original.advance(wm(11), |r| sink.push(r));
        let mut bytes = Vec::new();
        original.save(&mut bytes).expect("encodes");
        let mut restored = WindowState::new(hopping, reduce())
            .with_lateness(ms(3))
            .expect("valid");
        restored.restore(&bytes).expect("decodes");
        assert_eq!(restored.watermark(), original.watermark());
        assert_eq!(restored.open_windows(), original.open_windows());

        let (mut a, mut b) = (Vec::new(), Vec::new());
        for state in [(&mut original, &mut a), (&mut restored, &mut b)] {
            let (s, out) = state;
            // -3 is in [-10, 0) and [-5, 5), both closed; 9 in [0, 10) and [5, 15), open
            // until 13 and 18.
            assert!(
                s.add("a".to_owned(), at(-3), 1000, |r| out.push(r))
                    .is_err()
            );
            assert_eq!(
                s.add("c".to_owned(), at(9), 7, |r| out.push(r)),
                Ok(Arrival::Late)
            );
            s.advance(Watermark::MAX, |r| out.push(r));
        }
        assert_eq!(a, b);
        let got: Vec<(&str, Window, u64)> = a
            .iter()
            .map(|r| (r.key.as_str(), r.window, r.value))
            .collect();
        assert_eq!(
            got,
            [
                ("a", w(0, 10), 1),
                ("b", w(0, 10), 10),
                ("c", w(0, 10), 7),
                ("b", w(5, 15), 10),
                ("a", w(5, 15), 100),
                ("c", w(5, 15), 7),
                ("a", w(10, 20), 100),
            ]
        );
        assert_eq!(sink.len(), 1, "[-5, 5) closed before the checkpoint");

        let mut wrong: WindowState<u64, u64, _, _> = WindowState::new(hopping, reduce());
        assert!(wrong.restore(b"not a state").is_err());
    }
}
