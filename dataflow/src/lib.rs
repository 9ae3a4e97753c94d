//! Typed stream pipelines, checked by the compiler, running on an embedded log broker.
//!
//! At this stage of the project `dataflow` re-exports the [`broker`] (the embedded log with
//! Kafka semantics) and the (still inert) `#[stage]` / `#[pipeline]` attributes. Stages,
//! pipelines and the runtime that executes them arrive with the pipeline issue.

pub use broker;
pub use dataflow_macros::{pipeline, stage};
