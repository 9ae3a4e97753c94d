//! What a window computes over its records: an accumulator per key and window, built with
//! `init` and `add`, merged with `merge` when two session windows become one.

/// Aggregates a window's records: [`init`](Self::init) makes an empty accumulator,
/// [`add`](Self::add) puts a record into it, [`output`](Self::output) reads the result
/// (early results read it while the window is still open, the final one when it closes).
///
/// Results are independent of arrival order when `add` is commutative (counts, sums, minima,
/// maxima, sets); otherwise records are added in the order they arrive, which event time does
/// not fix. For session windows, implement [`SessionAggregator`] too.
///
/// ```
/// use dataflow::time::Aggregator;
///
/// /// The mean of a window's values.
/// struct Mean;
///
/// impl Aggregator<f64> for Mean {
///     type Acc = (f64, u64);
///     type Output = f64;
///     fn init(&self) -> (f64, u64) {
///         (0.0, 0)
///     }
///     fn add(&mut self, acc: &mut (f64, u64), value: f64) {
///         acc.0 += value;
///         acc.1 += 1;
///     }
///     fn output(&self, acc: &(f64, u64)) -> f64 {
///         acc.0 / acc.1 as f64
///     }
/// }
/// ```
pub trait Aggregator<T> {
    /// The running state of one key in one window; a checkpoint copies it (serde).
    type Acc;
    /// What a result carries.
    type Output;

    /// The accumulator of a window that has no record yet.
    fn init(&self) -> Self::Acc;

    /// Adds a record to a window's accumulator.
    fn add(&mut self, acc: &mut Self::Acc, value: T);

    /// The result of a window holding at least one record.
    fn output(&self, acc: &Self::Acc) -> Self::Output;
}

/// An [`Aggregator`] that can merge two accumulators, which session windows need: a record
/// that falls between two sessions of a key makes them one.
///
/// `merge(acc, other)` must give what adding the records of `other` to `acc` would have given;
/// `acc` belongs to the earlier session. `count` and `reduce` merge; `fold` cannot (two folded
/// states do not combine), so a session window over a `fold` does not compile:
///
/// ```compile_fail,E0277
/// use std::time::Duration;
/// use dataflow::time::{Fold, Session, SessionState};
///
/// let sum = Fold::new(0u64, |acc: u64, x: u64| acc + x);
/// let state: SessionState<String, u64, _> =
///     SessionState::new(Session::new(Duration::from_secs(1800)).unwrap(), sum);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot merge two session windows' accumulators",
    label = "session windows need an aggregator with `merge`",
    note = "a record between two sessions makes them one: use `Count` or `Reduce`, or implement `SessionAggregator::merge` for your aggregator (a `Fold` cannot merge)"
)]
pub trait SessionAggregator<T>: Aggregator<T> {
    /// Merges `other` (a later session's accumulator) into `acc`.
    fn merge(&mut self, acc: &mut Self::Acc, other: Self::Acc);
}

/// Counts a window's records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count;

impl<T> Aggregator<T> for Count {
    type Acc = u64;
    type Output = u64;

    #[inline]
    fn init(&self) -> u64 {
        0
    }

    #[inline]
    fn add(&mut self, acc: &mut u64, _value: T) {
        *acc += 1;
    }

    #[inline]
    fn output(&self, acc: &u64) -> u64 {
        *acc
    }
}

impl<T> SessionAggregator<T> for Count {
    #[inline]
    fn merge(&mut self, acc: &mut u64, other: u64) {
        *acc += other;
    }
}

/// Folds a window's records into a state: `fold(state, record) -> state`, from `init`. The
/// operator `fold` of keyed streams, per window. Not for session windows: two folded states do
/// not merge.
#[derive(Debug, Clone)]
pub struct Fold<S, F> {
    init: S,
    fold: F,
}

impl<S, F> Fold<S, F> {
    /// A fold from `init` with `fold`.
    pub fn new(init: S, fold: F) -> Self {
        Self { init, fold }
    }
}

impl<T, S: Clone, F: FnMut(S, T) -> S> Aggregator<T> for Fold<S, F> {
    type Acc = S;
    type Output = S;

    #[inline]
    fn init(&self) -> S {
        self.init.clone()
    }

    #[inline]
    fn add(&mut self, acc: &mut S, value: T) {
        // `fold` takes the state by value: leave a copy of `init` in its place meanwhile.
        let state = std::mem::replace(acc, self.init.clone());
        *acc = (self.fold)(state, value);
    }

    #[inline]
    fn output(&self, acc: &S) -> S {
        acc.clone()
    }
}

/// Combines a window's records pairwise: `reduce(acc, record) -> acc`, from the first record.
/// The operator `reduce` of keyed streams, per window. Merges sessions with the same function,
/// so it should be associative.
#[derive(Debug, Clone)]
pub struct Reduce<F> {
    reduce: F,
}

impl<F> Reduce<F> {
    /// A reduction with `reduce`.
    pub fn new(reduce: F) -> Self {
        Self { reduce }
    }
}

impl<T: Clone, F: FnMut(T, T) -> T> Aggregator<T> for Reduce<F> {
    type Acc = Option<T>;
    type Output = T;

    #[inline]
    fn init(&self) -> Option<T> {
        None
    }

    #[inline]
    fn add(&mut self, acc: &mut Option<T>, value: T) {
        *acc = Some(match acc.take() {
            Some(acc) => (self.reduce)(acc, value),
            None => value,
        });
    }

    /// # Panics
    ///
    /// On an accumulator that never had a record: windows only exist once they have one.
    #[inline]
    fn output(&self, acc: &Option<T>) -> T {
        acc.clone()
            .expect("a window's accumulator holds at least one record")
    }
}

impl<T: Clone, F: FnMut(T, T) -> T> SessionAggregator<T> for Reduce<F> {
    #[inline]
    fn merge(&mut self, acc: &mut Option<T>, other: Option<T>) {
        if let Some(other) = other {
            self.add(acc, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T, A: Aggregator<T>>(mut a: A, values: impl IntoIterator<Item = T>) -> A::Output {
        let mut acc = a.init();
        for v in values {
            a.add(&mut acc, v);
        }
        a.output(&acc)
    }

    #[test]
    fn count_fold_and_reduce_aggregate_like_their_iterator_namesakes() {
        assert_eq!(run(Count, ["a", "b", "c"]), 3);
        let concat = Fold::new(String::new(), |mut s: String, x: &str| {
            s.push_str(x);
            s
        });
        assert_eq!(run(concat, ["a", "b", "c"]), "abc");
        assert_eq!(run(Reduce::new(u32::max), [3, 9, 4]), 9);
    }

    #[test]
    fn merged_accumulators_equal_one_accumulator_over_both_sets() {
        let mut count = Count;
        let mut a = 2;
        SessionAggregator::<()>::merge(&mut count, &mut a, 5);
        assert_eq!(a, 7);

        let mut sum = Reduce::new(|a: u32, b: u32| a + b);
        let mut left = sum.init();
        sum.add(&mut left, 1);
        let mut right = sum.init();
        sum.add(&mut right, 2);
        sum.add(&mut right, 3);
        sum.merge(&mut left, right);
        assert_eq!(sum.output(&left), 6);
        let mut empty = sum.init();
        sum.merge(&mut empty, None);
        assert_eq!(empty, None);
    }
}
