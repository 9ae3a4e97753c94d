//! Naming a topic on whichever backend a pipeline runs: its name, the partitions it gets
//! when it has to be created, and the codec its records cross the process edge with.

use broker::Topic;

use crate::codec::Codec;

/// A topic by name, to bind a pipeline's source or sink to (or to open through a
/// [`Connection`](crate::backend::Connection)). A `&str` converts into one.
///
/// ```
/// use dataflow::TopicSpec;
///
/// let clicks = TopicSpec::new("clicks").partitions(4).json();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub(crate) name: String,
    pub(crate) partitions: Option<u32>,
    pub(crate) codec: Option<Codec>,
    pub(crate) role: Role,
}

/// What a topic is for in a pipeline: backends keep some kinds apart (the embedded broker
/// keeps internal topics bounded and under the reserved `__` prefix; `stdio://` writes dead
/// letters to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A source or sink, or a topic read or written through a `Connection`.
    Data,
    /// Joins two segments of one pipeline, bounded to `capacity` records per partition not
    /// yet processed downstream.
    Internal {
        capacity: u64,
        /// Whether a failing run may close it (it is not shared with other code or runs).
        closable: bool,
    },
    /// Keeps a pipeline's dead letters.
    DeadLetters,
}

impl TopicSpec {
    /// The topic `name` (1 partition if it must be created; the default codec).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            partitions: None,
            codec: None,
            role: Role::Data,
        }
    }

    /// The internal topic that joins two segments of a pipeline.
    pub(crate) fn internal(name: String, partitions: u32, capacity: u64, closable: bool) -> Self {
        Self {
            role: Role::Internal { capacity, closable },
            ..Self::new(name).partitions(partitions)
        }
    }

    /// The topic that keeps a pipeline's dead letters.
    pub(crate) fn dead_letters(name: String, codec: Codec) -> Self {
        Self {
            role: Role::DeadLetters,
            ..Self::new(name).codec(codec)
        }
    }

    /// The partitions the topic gets if it has to be created (an existing topic keeps its
    /// own).
    pub fn partitions(mut self, partitions: u32) -> Self {
        self.partitions = Some(partitions.max(1));
        self
    }

    /// The codec of its records on a remote backend (default: the pipeline's, bincode unless
    /// set in [`PipelineOptions`](crate::PipelineOptions)).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// JSON records (1 MiB at most), for topics other tools read or write.
    pub fn json(self) -> Self {
        self.codec(Codec::json())
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl From<&str> for TopicSpec {
    fn from(name: &str) -> Self {
        Self::new(name)
    }
}

impl From<String> for TopicSpec {
    fn from(name: String) -> Self {
        Self::new(name)
    }
}

impl From<&String> for TopicSpec {
    fn from(name: &String) -> Self {
        Self::new(name.as_str())
    }
}

/// What a pipeline's source or sink is bound to: an embedded [`Topic`] (which pins the
/// pipeline to the embedded broker holding it) or a [`TopicSpec`] resolved on the pipeline's
/// backend when it starts.
pub enum Binding<T> {
    /// A topic of an embedded broker.
    Topic(Topic<T>),
    /// A topic by name, on the pipeline's backend.
    Named(TopicSpec),
}

impl<T> Clone for Binding<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Topic(topic) => Self::Topic(topic.clone()),
            Self::Named(spec) => Self::Named(spec.clone()),
        }
    }
}

impl<T> std::fmt::Debug for Binding<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Topic(_) => f.write_str("Binding::Topic(..)"),
            Self::Named(spec) => f.debug_tuple("Binding::Named").field(spec).finish(),
        }
    }
}

/// What a generated builder's setter accepts for a source or sink of `T`: a `Topic<T>` of an
/// embedded broker, or a topic by name (`&str`, `String`, [`TopicSpec`]).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be bound to a source or sink of `{T}`",
    label = "expected a `Topic<{T}>` or a topic name",
    note = "bind an embedded `Topic<{T}>` (same value type), or a topic by name: `\"name\"` or `TopicSpec::new(\"name\")`"
)]
pub trait IntoBinding<T> {
    /// The binding.
    fn into_binding(self) -> Binding<T>;
}

impl<T> IntoBinding<T> for Binding<T> {
    fn into_binding(self) -> Binding<T> {
        self
    }
}

impl<T> IntoBinding<T> for Topic<T> {
    fn into_binding(self) -> Binding<T> {
        Binding::Topic(self)
    }
}

impl<T> IntoBinding<T> for &Topic<T> {
    fn into_binding(self) -> Binding<T> {
        Binding::Topic(self.clone())
    }
}

impl<T> IntoBinding<T> for TopicSpec {
    fn into_binding(self) -> Binding<T> {
        Binding::Named(self)
    }
}

impl<T> IntoBinding<T> for &str {
    fn into_binding(self) -> Binding<T> {
        Binding::Named(TopicSpec::new(self))
    }
}

impl<T> IntoBinding<T> for String {
    fn into_binding(self) -> Binding<T> {
        Binding::Named(TopicSpec::new(self))
    }
}
