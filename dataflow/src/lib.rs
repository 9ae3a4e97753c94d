//! Typed stream pipelines, checked by the compiler, running on an embedded log broker.
//!
//! Stages are plain functions; `#[pipeline]` wires them into a graph that rustc checks, cuts
//! it into segments at repartitions, fuses the stages of each segment into one loop, and runs
//! one task per partition on tokio, over the embedded [`broker`].
//!
//! ```
//! use dataflow::{pipeline, PipelineOptions, Sink, Source};
//! use dataflow::broker::{Broker, Start, TopicConfig};
//!
//! fn words(line: String) -> Vec<String> {
//!     line.split_whitespace().map(str::to_owned).collect()
//! }
//!
//! #[pipeline]
//! fn word_count(lines: Source<String>, counts: Sink<(String, u64)>) {
//!     lines.flat_map(words).key_by(|w: &String| w.clone()).count().to(counts);
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = Broker::new();
//! let lines = broker.topic::<String>("lines", TopicConfig::new())?;
//! let counts = broker.topic::<(String, u64)>("counts", TopicConfig::new())?;
//! lines.producer().send("to be or not to be".to_owned()).await?;
//!
//! let running = WordCount::builder().lines(lines).counts(counts.clone()).start().await?;
//! let mut reader = counts.consumer(Start::Earliest)?;
//! let mut last = std::collections::HashMap::new();
//! for _ in 0..6 {
//!     let record = reader.recv().await?;
//!     last.insert(record.0.clone(), record.1);
//! }
//! assert_eq!(last["to"], 2);
//! println!("{}", running.shutdown().await?);
//! # Ok(())
//! # }
//! ```
//!
//! # Concepts
//!
//! - A **source** is a parameter `name: Source<T>` of a pipeline: the stream of a topic bound to
//!   it when the pipeline starts. A **sink** (`Sink<T>`) is a topic the pipeline writes.
//! - A **stage** is a plain function or closure; the operator that uses it (`map`, `filter`,
//!   ...) decides its shape. [`#[pipeline]`](macro@pipeline) lists every operator, the shape of
//!   its stage and what it emits; [`#[stage]`](macro@stage) checks and names a function.
//! - A **segment** is a part of the graph whose stages run fused in one loop, one task per
//!   partition of its input. The graph is cut into segments at repartitions (`key_by`),
//!   merges and async stages.
//! - An **internal topic** joins two segments; it is bounded, so a slow segment slows the one
//!   before it.
//! - The **group prefix** ([`PipelineOptions::group`], the pipeline's name by default) names
//!   the consumer groups of the segments: a restarted pipeline, or another process, with the
//!   same prefix resumes from the committed offsets.
//! - A **dead letter** ([`DeadLetter`]) is a record a stage rejected (`Err`, or a panic), with
//!   the stage, the error and the record's position; the pipeline goes on without it.
//!
//! # Execution and delivery
//!
//! The graph is cut into segments at repartitions and merges; the stateless stages of a
//! segment run fused in one loop, with no queue, allocation or dynamic dispatch between them.
//! Segments are joined by internal broker topics, bounded, so a slow sink slows the source.
//! Each segment runs one task per partition. A task commits its input after its outputs are
//! appended (at-least-once); [`Running::shutdown`] drains and commits, so a clean stop and
//! restart loses and repeats nothing. A stage that panics or returns `Err` never stops the
//! pipeline: the record goes to the dead-letter output ([`DeadLetter`]).
//!
//! # Backends
//!
//! Bind sources and sinks by name ([`TopicSpec`], or a `&str`) and the same pipeline runs on
//! the backend [`PipelineOptions::backend`] names: `mem://` (the default), `redis://` or
//! `rediss://` (cargo feature `redis`), `kafka://` (feature `kafka`). Sources, sinks and the
//! internal topics live there, and several processes with the same group prefix share the
//! partitions. Values crossing topics are serde types, encoded with a [`codec::Codec`] on
//! remote backends; a payload that does not decode is a dead letter. There, dead letters are
//! also kept on the backend as [`StoredDeadLetter`]s ([`Running::dead_letter_topic`]),
//! before their record is committed. See [`backend`].
//!
//! # Metrics and pictures
//!
//! [`Running::metrics`] gives per-stage counts, rates and latency quantiles (and end-to-end
//! latency at sinks); its `Display` is a table. The graph renders as Mermaid and DOT
//! ([`Graph::to_mermaid`], [`Running::to_mermaid`] with live figures).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod backend;
pub mod builder;
pub mod codec;
mod dead_letter;
mod error;
mod graph;
mod metrics;
mod options;
mod partition;
mod render;
mod runtime;
pub mod signature;
mod spec;
mod stage;
pub mod time;
#[doc(hidden)]
pub mod topics;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use broker;
pub use broker::Topic;
#[doc = include_str!("manual/pipeline.md")]
#[doc(inline)]
pub use dataflow_macros::pipeline;
#[doc = include_str!("manual/stage.md")]
#[doc(inline)]
pub use dataflow_macros::stage;

pub use crate::builder::{Bound, Unbound};
pub use crate::dead_letter::{DeadLetter, StoredDeadLetter};
pub use crate::error::{PipelineError, StartError};
pub use crate::graph::{Graph, Node, NodeKind};
pub use crate::metrics::{Metrics, StageStats};
pub use crate::options::{Guarantee, PipelineOptions};
pub use crate::partition::partition_of;
pub use crate::runtime::checkpoint::error::StateError;
pub use crate::runtime::port::Port;
pub use crate::runtime::running::Running;
pub use crate::runtime::state::{KeyedState, Snapshot};
pub use crate::spec::{Binding, IntoBinding, TopicSpec};
pub use crate::stage::{Deliver, Exchange, FanOut, Key, Named, Stage};
pub use crate::time::{LateRecord, Timestamp, Watermark, WindowResult};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// A source parameter of a `#[pipeline]` function: a stream of `T` read from a topic bound in
/// the generated builder.
pub struct Source<T>(std::marker::PhantomData<fn() -> T>);

/// A sink parameter of a `#[pipeline]` function: a topic of `T` bound in the generated
/// builder, written with `.to(sink)`.
pub struct Sink<T>(std::marker::PhantomData<fn(T)>);
