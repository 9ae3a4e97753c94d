//! The topics a generated pipeline reads and writes, with the bounds their values need.
//!
//! `#[pipeline]` goes through these functions, so that a value that cannot cross between
//! tasks is reported once, in these terms, at the stage that produced it. They return boxed
//! futures, whose types do not mention the value type: the bound is checked at the call only
//! (not again wherever the future is held), so it is reported once.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::BoxFuture;
use crate::builder::Bound;
use crate::error::{PipelineError, StartError};
use crate::runtime::launch::Launch;
use crate::runtime::output::Output;
use crate::runtime::port::Port;
use crate::runtime::state::{KeyedState, Snapshot};
use crate::runtime::task::Task;
use crate::spec::Binding;
use crate::stage::{Deliver, Exchange, FanOut, Key};

/// What a builder's setter keeps: the parameter's binding, as its bound state.
pub fn bound<T>(binding: Binding<T>) -> Bound<T> {
    Bound(binding)
}

/// Resolves the binding of source or sink `param` on the pipeline's backend.
pub async fn bind<T: Send + Sync + 'static>(
    launch: &mut Launch,
    param: &'static str,
    binding: Binding<T>,
) -> Result<Port<T>, StartError> {
    launch.bind(param, binding).await
}

/// The internal topic of a repartition or merge.
pub fn internal<'a, T: Exchange>(
    launch: &'a mut Launch,
    node: &'a str,
    partitions: u32,
) -> BoxFuture<'a, Result<Port<T>, StartError>> {
    Box::pin(launch.internal_topic(node, partitions))
}

/// A buffer for the values a task writes to `topic`.
pub async fn output<T: Deliver>(topic: &Port<T>) -> Result<Output<T>, PipelineError> {
    topic.output().await
}

/// Starts a segment reading `input`, one task per partition.
pub fn read<'a, In: Exchange, F, Fut>(
    launch: &'a mut Launch,
    index: usize,
    input: &'a Port<In>,
    upstream: &'a [usize],
    make_task: F,
) -> BoxFuture<'a, Result<(), StartError>>
where
    F: Fn(Task<In>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), PipelineError>> + Send + 'static,
{
    Box::pin(launch.segment(index, input, upstream, make_task))
}

/// Writes `value`, read from input partition `partition`, to a sink of `T` (`.to(sink)` on a
/// stream that is not keyed: the input partition picks the sink's).
#[inline(always)]
pub fn to_sink<T, V: SinkValue<T>>(out: &mut Output<T>, partition: u32, value: V) {
    out.push(partition, value.into_sink_value());
}

/// Writes a `(key, value)` pair to a sink of `T` (`.to(sink)` on a keyed stream: the key
/// picks the sink's partition).
#[inline(always)]
pub fn to_sink_keyed<T, P: KeyedSinkValue<T>>(out: &mut Output<T>, pair: P) {
    pair.push_keyed(out);
}

/// Values that a sink of `T` takes: `T` itself.
#[diagnostic::on_unimplemented(
    message = "a stream of `{Self}` cannot be written to a sink of `{T}`",
    label = "this sink takes `{T}`",
    note = "declare the sink as `Sink<{Self}>`, or map the stream to `{T}` before `.to(..)`"
)]
pub trait SinkValue<T> {
    /// The value, as the sink's type.
    fn into_sink_value(self) -> T;
}

#[diagnostic::do_not_recommend]
impl<T> SinkValue<T> for T {
    #[inline(always)]
    fn into_sink_value(self) -> T {
        self
    }
}

/// Pairs of a keyed stream that a sink of `T` takes: `T` itself, a `(key, value)` pair.
#[diagnostic::on_unimplemented(
    message = "a keyed stream of `{Self}` cannot be written to a sink of `{T}`",
    label = "this sink takes `{T}`",
    note = "after `key_by`, `count`, `fold` or `reduce` a stream holds `(key, value)` pairs: declare the sink as `Sink<{Self}>`, or map the pairs to `{T}` before `.to(..)`"
)]
pub trait KeyedSinkValue<T> {
    /// Buffers the pair in `out`, for the partition of its key.
    fn push_keyed(self, out: &mut Output<T>);
}

// Generic over the pair and `T`, so that rustc reports a sink of another type with the
// message above rather than by pointing at this implementation.
#[diagnostic::do_not_recommend]
impl<P: KeyedPair, T> KeyedSinkValue<T> for P
where
    P: SameType<T>,
{
    #[inline(always)]
    fn push_keyed(self, out: &mut Output<T>) {
        self.push_pair(<P as SameType<T>>::output(out));
    }
}

/// A `(key, value)` pair of a keyed stream.
pub trait KeyedPair: Sized {
    /// Buffers the pair in `out`, for the partition of its key.
    fn push_pair(self, out: &mut Output<Self>);
}

impl<K: Key, V> KeyedPair for (K, V) {
    #[inline(always)]
    fn push_pair(self, out: &mut Output<Self>) {
        out.push_pair(self);
    }
}

/// `Self` and `T` are one type.
pub trait SameType<T> {
    /// `out`, as an output of `Self`.
    fn output(out: &mut Output<T>) -> &mut Output<Self>
    where
        Self: Sized;
}

impl<T> SameType<T> for T {
    #[inline(always)]
    fn output(out: &mut Output<T>) -> &mut Output<T> {
        out
    }
}

/// The state of aggregate `node` (`count`, `fold`, `reduce`) in `task`: restored from the
/// checkpoint the pipeline starts from, or empty.
pub fn keyed_state<In: Clone, K, V>(
    task: &Task<In>,
    node: usize,
) -> Result<KeyedState<K, V>, PipelineError>
where
    K: Key + Serialize + DeserializeOwned,
    V: AggregateState,
{
    task.keyed_state(node)
}

/// An aggregate's state, as the checkpoints copy it.
#[inline(always)]
pub fn snapshot<K, V>(state: &mut KeyedState<K, V>) -> &mut dyn Snapshot
where
    K: Key + Serialize + DeserializeOwned,
    V: AggregateState,
{
    state
}

/// Values an aggregate keeps per key (the count of `count`, the state of `fold`, the value
/// of `reduce`): checkpoints copy them, so that a restarted pipeline goes on from them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be kept as the state of an aggregate",
    label = "this aggregate keeps a `{Self}` per key",
    note = "checkpoints copy the state of `count`, `fold` and `reduce`: it must implement `Clone + Send + 'static` and serde's `Serialize + Deserialize`: add `#[derive(Clone, serde::Serialize, serde::Deserialize)]`"
)]
pub trait AggregateState: Clone + Send + Serialize + DeserializeOwned + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Serialize + DeserializeOwned + 'static> AggregateState for T {}

/// A value sent to another task (a repartition or a merge).
#[inline(always)]
pub fn exchange<T: Exchange>(value: T) -> T {
    value
}

/// A copy for one more downstream stage (fan-out).
#[inline(always)]
pub fn fan_out<T: FanOut>(value: &T) -> T {
    value.clone()
}
