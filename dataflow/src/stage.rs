//! Stages: plain functions and closures, typed by the operator that uses them.
//!
//! A stage is an ordinary function (`fn(T) -> U` for `map`, `fn(&T) -> bool` for `filter`,
//! ...), still callable and unit-testable on its own. The operator decides what a call means,
//! as with iterator adapters. `#[stage]` is optional: it checks the function and, with
//! `name = "..."`, gives it the name shown in metrics and graphs.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use std::ops::Deref;

/// A function with a name, made by `#[stage(name = "...")]`.
///
/// It dereferences to the function, so the stage stays callable as `parse(line)`.
pub struct Named<F> {
    name: &'static str,
    function: F,
}

impl<F> Named<F> {
    /// Names `function`.
    pub const fn new(name: &'static str, function: F) -> Self {
        Self { name, function }
    }

    /// The stage's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<F> Deref for Named<F> {
    type Target = F;

    fn deref(&self) -> &F {
        &self.function
    }
}

impl<F> fmt::Debug for Named<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Named").field("name", &self.name).finish()
    }
}

/// A stage taking `In` by value: any `FnMut(In) -> Out` (functions and closures, through a
/// blanket impl, as axum's `Handler` and bevy's `IntoSystem`), and `#[stage(name = "...")]`
/// functions. `Marker` (`fn(In) -> Out`) keeps the impls apart; users never name it.
///
/// `map`, `filter_map`, `flat_map`, `split_result` and `map_async` take their stage through
/// this trait; a stage of the wrong shape reads as rustc's "expected function signature
/// `fn(u32) -> _`, found `fn(u64) -> _`", at the stage.
///
/// ```
/// use dataflow::Stage;
///
/// fn double(x: u32) -> u32 {
///     x * 2
/// }
///
/// fn run<M, S: Stage<u32, M>>(mut stage: S) -> S::Output {
///     stage.call(21)
/// }
///
/// assert_eq!(run(double), 42);
/// assert_eq!(run(|x: u32| x + 1), 22);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a stage taking `{In}`",
    label = "expected a function or closure taking `{In}`"
)]
pub trait Stage<In, Marker> {
    /// What the stage returns.
    type Output;

    /// Runs the stage on one input.
    fn call(&mut self, input: In) -> Self::Output;
}

#[diagnostic::do_not_recommend]
impl<F, In, Out> Stage<In, fn(In) -> Out> for F
where
    F: FnMut(In) -> Out,
{
    type Output = Out;

    #[inline(always)]
    fn call(&mut self, input: In) -> Out {
        self(input)
    }
}

/// Marks types that can be the key of `key_by`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a key",
    label = "this key does not implement `Hash + Eq + Clone + Send + Sync + 'static`",
    note = "keys decide the partition and index keyed state: they must implement `Hash`, `Eq`, `Clone`, `Send` and `Sync`"
)]
pub trait Key: std::hash::Hash + Eq + Clone + Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static> Key for K {}

/// Marks values that can cross a repartition (or any other topic between two tasks).
///
/// They implement serde's `Serialize` and `Deserialize` too: a pipeline that compiles runs
/// unchanged on every backend, and on Redis or Kafka its topics hold encoded records. (The
/// embedded broker never encodes them.)
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross a repartition",
    label = "this value is sent to another task",
    note = "values sent between tasks through a topic must implement `Clone + Send + Sync + 'static` and serde's `Serialize + Deserialize` (so the pipeline runs on any backend): add `#[derive(Clone, serde::Serialize, serde::Deserialize)]`"
)]
pub trait Exchange: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Exchange for T {}

/// Marks values used by more than one downstream stage.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is used by more than one downstream stage, so it must implement `Clone`",
    label = "this stream fans out"
)]
pub trait FanOut: Clone {}

#[diagnostic::do_not_recommend]
impl<T: Clone> FanOut for T {}

/// Marks values that can be written to a topic.
///
/// Topic values can be read back as well as written (a file-backed topic reads its records
/// back when it reopens; readers of the embedded broker get clones), so they need what
/// [`Exchange`] needs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be written to a topic",
    label = "this value is written to a topic",
    note = "topic values must implement `Clone + Send + Sync + 'static` and serde's `Serialize + Deserialize` (so the pipeline runs on any backend and its records can be read back): add `#[derive(Clone, serde::Serialize, serde::Deserialize)]`"
)]
pub trait Deliver: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static> Deliver for T {}
