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
//! # Stages
//!
//! The operator decides what a stage means, as with iterators: `map` (`fn(T) -> U`; a stage
//! returning `Result<U, E>` sends `Err` to the dead-letter output), `filter` (`fn(&T) -> bool`),
//! `filter_map` (`fn(T) -> Option<U>`), `flat_map` (`fn(T) -> impl IntoIterator`), `inspect`
//! (`fn(&T)`), `key_by` (`fn(&T) -> K`), and `async fn(T) -> U` with `map_async(stage, limit)`
//! (at most `limit` records in flight per task, default 16; outputs in input order) or
//! `map_async_unordered` (outputs as they complete). Closures work too. See [`signature`].
//!
//! # Operators
//!
//! `map`, `filter`, `filter_map`, `flat_map`, `inspect`, `key_by` (repartition by key; the
//! stream becomes `(K, T)` pairs and downstream runs one task per partition), `count`, `fold`
//! and `reduce` on keyed streams (running aggregates, emitted on every update), `merge` (fan-in),
//! `split` (two branches by a predicate), `split_result` (two branches by `Ok` / `Err`), fan-out
//! (use a `let` stream more than once), and `to(sink)`.
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
#[doc(hidden)]
pub mod topics;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use broker;
pub use broker::Topic;
pub use dataflow_macros::{pipeline, stage};

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
