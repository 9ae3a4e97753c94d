//! The shape a stage must have for each operator.
//!
//! `#[pipeline]` calls every stage through the function of its operator here, so that a
//! stage of the wrong shape is reported at the stage, in rustc's words ("expected function
//! signature `fn(u32) -> _`, found `fn(u64) -> _`"), with the operator's name in the note.

use crate::stage::{Key, Stage};

/// `map`: `fn(T) -> U`. A stage returning `Result<U, E>` sends each `Err` to the dead-letter
/// output and passes `U` on.
#[inline(always)]
pub fn map<T, M, F: Stage<T, M>>(value: T, stage: &mut F) -> F::Output {
    stage.call(value)
}

/// `filter`: `fn(&T) -> bool`.
#[inline(always)]
pub fn filter<T, F: FnMut(&T) -> bool>(value: &T, stage: &mut F) -> bool {
    stage(value)
}

/// `filter_map`: `fn(T) -> Option<U>`.
#[inline(always)]
pub fn filter_map<T, U, M, F: Stage<T, M, Output = Option<U>>>(
    value: T,
    stage: &mut F,
) -> Option<U> {
    stage.call(value)
}

/// `flat_map`: `fn(T) -> impl IntoIterator<Item = U>`.
#[inline(always)]
pub fn flat_map<T, M, F: Stage<T, M, Output: IntoIterator>>(value: T, stage: &mut F) -> F::Output {
    stage.call(value)
}

/// `inspect`: `fn(&T)`.
#[inline(always)]
pub fn inspect<T, F: FnMut(&T)>(value: &T, stage: &mut F) {
    stage(value)
}

/// `key_by`: `fn(&T) -> K`, where `K` can be a key.
#[inline(always)]
pub fn key_by<T, K: Key, F: FnMut(&T) -> K>(value: &T, stage: &mut F) -> K {
    stage(value)
}

/// `split`: `fn(&T) -> bool`: `true` goes to the first branch, `false` to the second.
#[inline(always)]
pub fn split<T, F: FnMut(&T) -> bool>(value: &T, stage: &mut F) -> bool {
    stage(value)
}

/// `split_result`: `fn(T) -> Result<U, E>`: `Ok` goes to the first branch, `Err` to the
/// second.
#[inline(always)]
pub fn split_result<T, U, E, M, F: Stage<T, M, Output = Result<U, E>>>(
    value: T,
    stage: &mut F,
) -> Result<U, E> {
    stage.call(value)
}

/// `fold`: `fn(S, V) -> S`: a key's running state and its next value give the next state.
///
/// `R` is `S`. It is a parameter of its own, decided by the stage alone, so that a stage
/// that is not a function is reported once, here, and not again where the state goes.
#[inline(always)]
pub fn fold<S, V, R, F: FoldStage<S, V, R>>(state: S, value: V, stage: &mut F) -> R {
    stage(state, value)
}

/// A stage of `fold`: `fn(S, V) -> S`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the stage of `fold` over values of `{V}`",
    label = "expected a stage `fn(state, value) -> state`",
    note = "`fold(init, stage)` takes the initial state first, then the stage"
)]
pub trait FoldStage<S, V, R>: FnMut(S, V) -> R {}

#[diagnostic::do_not_recommend]
impl<S, V, R, F: FnMut(S, V) -> R> FoldStage<S, V, R> for F {}

/// `reduce`: `fn(V, V) -> V`: a key's running value and its next value.
#[inline(always)]
pub fn reduce<V, F: FnMut(V, V) -> V>(acc: V, value: V, stage: &mut F) -> V {
    stage(acc, value)
}

/// `map_async`: `async fn(T) -> U`. A stage returning `Result<U, E>` sends each `Err` to the
/// dead-letter output. At most `limit` records are in flight per task (default 16). The
/// future must be `Send`: tasks run on tokio's worker threads.
#[inline(always)]
pub fn map_async<T, M, F>(value: T, stage: &mut F) -> AsyncStageFuture<F::Output>
where
    F: Stage<T, M, Output: AsyncStageOutput<Future: SendFuture>>,
{
    stage.call(value).into_stage_future().into_send_future()
}

/// The future of an async stage whose output is `Out`.
///
/// When `Out` is not a `Send` future this type is unknown to rustc, which then reports the
/// stage once, where it is given to `map_async`, and not again wherever the future goes.
pub type AsyncStageFuture<Out> = <<Out as AsyncStageOutput>::Future as SendFuture>::Future;

/// What an async stage returns: a future.
#[diagnostic::on_unimplemented(
    message = "`map_async` awaits its stage, but this stage returns `{Self}`, not a future",
    label = "not an async stage",
    note = "give `map_async` an `async fn`, or use `.map(stage)` for a function that returns its value"
)]
pub trait AsyncStageOutput: std::future::Future {
    /// The future.
    type Future: std::future::Future;

    /// The future, as it is.
    fn into_stage_future(self) -> Self::Future;
}

#[diagnostic::do_not_recommend]
impl<Fut: std::future::Future> AsyncStageOutput for Fut {
    type Future = Fut;

    #[inline(always)]
    fn into_stage_future(self) -> Fut {
        self
    }
}

/// A future that can move between threads, as the stage futures of a task must (tasks run on
/// tokio's worker threads). rustc reports a future that is not `Send` with the value that
/// makes it so.
pub trait SendFuture {
    /// The future.
    type Future: std::future::Future + Send;

    /// The future, as it is.
    fn into_send_future(self) -> Self::Future;
}

impl<Fut: std::future::Future + Send> SendFuture for Fut {
    type Future = Fut;

    #[inline(always)]
    fn into_send_future(self) -> Fut {
        self
    }
}

#[doc(hidden)]
pub mod output {
    //! How `map` treats its stage's output: a `Result` is split (its `Err` goes to the dead
    //! letters), a future is refused (use `map_async`), anything else passes on.

    use std::fmt::Display;

    /// Whether a `map` stage's output is a `Result` (its `Err` goes to the dead letters).
    pub struct IsResult;
    /// A `map` stage's output that is not a `Result`.
    pub struct IsPlain;

    pub trait ClassifyResult {
        fn __dataflow_classify(&self) -> IsResult;
    }

    impl<T, E> ClassifyResult for Result<T, E> {
        #[inline(always)]
        fn __dataflow_classify(&self) -> IsResult {
            IsResult
        }
    }

    pub trait ClassifyPlain {
        fn __dataflow_classify(&self) -> IsPlain;
    }

    impl<T> ClassifyPlain for &T {
        #[inline(always)]
        fn __dataflow_classify(&self) -> IsPlain {
            IsPlain
        }
    }

    /// A `map` stage's output that is a future: an async stage given to `map`.
    pub struct IsFuture;

    pub trait ClassifyFuture {
        fn __dataflow_classify(&self) -> IsFuture;
    }

    impl<F: std::future::Future> ClassifyFuture for F {
        #[inline(always)]
        fn __dataflow_classify(&self) -> IsFuture {
            IsFuture
        }
    }

    /// Never implemented: reports an async stage given to `map`.
    #[diagnostic::on_unimplemented(
        message = "`map` does not await its stage: this stage returns a future (`{Self}`)",
        label = "an async stage",
        note = "use `.map_async(stage)` (or `.map_async(stage, limit)`) for an `async fn` stage"
    )]
    pub trait SyncStageOutput {}

    impl IsFuture {
        pub fn into_result<F: SyncStageOutput, T>(
            self,
            _value: F,
        ) -> Result<T, std::convert::Infallible> {
            unreachable!("`SyncStageOutput` has no implementation")
        }
    }

    impl IsResult {
        #[inline(always)]
        pub fn into_result<T, E: Display>(self, value: Result<T, E>) -> Result<T, E> {
            value
        }
    }

    impl IsPlain {
        #[inline(always)]
        pub fn into_result<T>(self, value: T) -> Result<T, std::convert::Infallible> {
            Ok(value)
        }
    }
}

/// The by-value operators for closures written in the pipeline: the same shapes, as `FnMut`
/// bounds, so that rustc can infer a closure's argument type from the stream.
#[doc(hidden)]
pub mod closure {
    /// `map` with a closure.
    #[inline(always)]
    pub fn map<T, U, F: FnMut(T) -> U>(value: T, stage: &mut F) -> U {
        stage(value)
    }

    /// `filter_map` with a closure.
    #[inline(always)]
    pub fn filter_map<T, U, F: FnMut(T) -> Option<U>>(value: T, stage: &mut F) -> Option<U> {
        stage(value)
    }

    /// `flat_map` with a closure.
    #[inline(always)]
    pub fn flat_map<T, I: IntoIterator, F: FnMut(T) -> I>(value: T, stage: &mut F) -> I {
        stage(value)
    }

    /// `split_result` with a closure.
    #[inline(always)]
    pub fn split_result<T, U, E, F: FnMut(T) -> Result<U, E>>(
        value: T,
        stage: &mut F,
    ) -> Result<U, E> {
        stage(value)
    }

    /// `map_async` with a closure.
    #[inline(always)]
    pub fn map_async<T, Out, F>(value: T, stage: &mut F) -> super::AsyncStageFuture<Out>
    where
        F: FnMut(T) -> Out,
        Out: super::AsyncStageOutput<Future: super::SendFuture>,
    {
        use super::SendFuture as _;
        stage(value).into_stage_future().into_send_future()
    }

    /// `fold` with a closure.
    #[inline(always)]
    pub fn fold<S, V, R, F: FnMut(S, V) -> R>(state: S, value: V, stage: &mut F) -> R {
        stage(state, value)
    }

    pub use super::{filter, inspect, key_by, reduce, split};
}
