//! The topics a generated pipeline reads and writes, with the bounds their values need.
//!
//! `#[pipeline]` goes through these functions, so that a value that cannot cross between
//! tasks is reported once, in these terms, at the stage that produced it. They return boxed
//! futures, whose types do not mention the value type: the bound is checked at the call only
//! (not again wherever the future is held), so it is reported once.

use std::future::Future;

use crate::backend::BoxFuture;
use crate::error::{PipelineError, StartError};
use crate::runtime::launch::Launch;
use crate::runtime::output::Output;
use crate::runtime::port::Port;
use crate::runtime::task::Task;
use crate::spec::Binding;
use crate::stage::{Deliver, Exchange, FanOut};

/// Resolves the binding of source or sink `param` on the pipeline's backend.
pub async fn bind<T: Send + Sync + 'static>(
    launch: &mut Launch,
    param: &'static str,
    binding: Option<Binding<T>>,
) -> Result<Port<T>, StartError> {
    let binding = binding.ok_or(StartError::Unbound { name: param })?;
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
