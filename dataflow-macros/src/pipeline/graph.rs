//! The pipeline as a graph: nodes joined by ports, cut into segments. Data and queries only;
//! `build` makes it and reports wiring errors, `codegen` reads it.

use proc_macro2::Span;

use crate::operators::Kind;

/// An output of a node: 0, or 1 for the second branch of a split.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Port {
    pub(crate) node: usize,
    pub(crate) output: u8,
}

impl Port {
    /// The first (or only) output of `node`.
    pub(crate) fn first(node: usize) -> Self {
        Self { node, output: 0 }
    }
}

pub(crate) struct Node {
    pub(crate) kind: Kind,
    /// Its name in metrics and graphs, unique in the pipeline (see `names`).
    pub(crate) name: String,
    /// The stage argument.
    pub(crate) stage: Option<syn::Expr>,
    /// `fold`'s initial state.
    pub(crate) init: Option<syn::Expr>,
    /// An async stage's limit of records in flight.
    pub(crate) limit: Option<syn::Expr>,
    /// The call that made the node (for sources and sinks: the parameter's name).
    pub(crate) span: Span,
    pub(crate) inputs: Vec<Port>,
    /// The call that made each input edge (for a sink: each `.to(..)`).
    pub(crate) input_spans: Vec<Span>,
    /// Where each input stream is used: the stream's name when a chain starts with this
    /// node, else the call (for a fan-out, where a value is copied).
    pub(crate) use_spans: Vec<Span>,
    /// The segment whose tasks run it.
    pub(crate) segment: usize,
    /// Whether the output is a `(key, value)` stream partitioned by key.
    pub(crate) keyed: bool,
    /// For sources and sinks: the parameter's index.
    pub(crate) param: Option<usize>,
}

impl Node {
    /// Where rustc should report a problem with what the node does: its stage if it has one.
    pub(crate) fn stage_span(&self) -> Span {
        self.stage
            .as_ref()
            .map_or(self.span, syn::spanned::Spanned::span)
    }
}

/// Where a segment reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// The topic bound to this parameter (the source node's index is `node`).
    Source { param: usize, node: usize },
    /// The internal topic written by this `key_by`, `merge` or async node.
    Internal { node: usize },
}

pub(crate) struct Segment {
    pub(crate) input: Input,
    /// The segments that write its input.
    pub(crate) upstream: Vec<usize>,
}

#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) segments: Vec<Segment>,
}

impl Graph {
    /// Consumers of a port, in order.
    pub(crate) fn consumers(&self, port: Port) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.inputs.contains(&port))
            .map(|(i, _)| i)
    }

    /// The segment that reads what node `node` emits: for a `key_by` the one its internal
    /// topic feeds, for every other node its own.
    pub(crate) fn downstream_segment(&self, node: usize) -> usize {
        match self.nodes[node].kind {
            Kind::KeyBy => self
                .segment_reading(node)
                .expect("every key_by starts a segment"),
            _ => self.nodes[node].segment,
        }
    }

    /// The segment that reads the internal topic of `node`, if any.
    pub(crate) fn segment_reading(&self, node: usize) -> Option<usize> {
        self.segments
            .iter()
            .position(|s| s.input == Input::Internal { node })
    }
}
