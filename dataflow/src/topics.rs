//! The topics a generated pipeline reads and writes, with the bounds their values need.
//!
//! `#[pipeline]` goes through these functions, so that a value that cannot cross between
//! tasks is reported once, in these terms, at the stage that produced it.

use std::future::Future;

use broker::Topic;

use crate::error::{PipelineError, StartError};
use crate::runtime::launch::Launch;
use crate::runtime::output::Output;
use crate::runtime::task::Task;
use crate::stage::{Deliver, Exchange, FanOut};

/// The internal topic of a repartition or merge.
pub fn internal<T: Exchange>(
    launch: &mut Launch,
    node: &str,
    partitions: u32,
) -> Result<Topic<T>, StartError> {
    launch.internal_topic(node, partitions)
}

/// A buffer for the values a task writes to `topic`.
pub fn output<T: Deliver>(topic: &Topic<T>) -> Output<T> {
    Output::new(topic)
}

/// Starts a segment reading `input`, one task per partition.
pub fn read<In: Exchange, F, Fut>(
    launch: &mut Launch,
    index: usize,
    input: &Topic<In>,
    upstream: &[usize],
    make_task: F,
) -> Result<(), StartError>
where
    F: Fn(Task<In>) -> Fut,
    Fut: Future<Output = Result<(), PipelineError>> + Send + 'static,
{
    launch.segment(index, input, upstream, make_task)
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
