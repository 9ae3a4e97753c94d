//! The compiled graph of a pipeline: nodes, edges and segments (`render.rs` draws it).

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NodeKind {
    /// Reads a topic bound to a source parameter.
    Source,
    /// Writes to a topic bound to a sink parameter.
    Sink,
    /// `map`.
    Map,
    /// `map_async`: an async stage, in input order.
    MapAsync,
    /// `map_async_unordered`: an async stage, outputs as they complete.
    MapAsyncUnordered,
    /// `filter`.
    Filter,
    /// `filter_map`.
    FilterMap,
    /// `flat_map`.
    FlatMap,
    /// `inspect`.
    Inspect,
    /// `key_by`: repartitions by key.
    KeyBy,
    /// `merge`: fan-in of several streams.
    Merge,
    /// `split`: two branches by a predicate.
    Split,
    /// `split_result`: two branches by `Ok` / `Err`.
    SplitResult,
    /// `count`: a running count per key.
    Count,
    /// `fold`: a running fold per key.
    Fold,
    /// `reduce`: a running reduce per key.
    Reduce,
}

impl NodeKind {
    /// The operator's name as written in a pipeline.
    pub fn operator(self) -> &'static str {
        match self {
            NodeKind::Source => "source",
            NodeKind::Sink => "to",
            NodeKind::Map => "map",
            NodeKind::MapAsync => "map_async",
            NodeKind::MapAsyncUnordered => "map_async_unordered",
            NodeKind::Filter => "filter",
            NodeKind::FilterMap => "filter_map",
            NodeKind::FlatMap => "flat_map",
            NodeKind::Inspect => "inspect",
            NodeKind::KeyBy => "key_by",
            NodeKind::Merge => "merge",
            NodeKind::Split => "split",
            NodeKind::SplitResult => "split_result",
            NodeKind::Count => "count",
            NodeKind::Fold => "fold",
            NodeKind::Reduce => "reduce",
        }
    }
}

/// One node of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Its name: the stage function's name, the parameter name of a source or sink, or
    /// `operator_index` for closures.
    pub name: &'static str,
    /// What it does.
    pub kind: NodeKind,
    /// The segment it runs in: stages of one segment are fused into one loop.
    pub segment: usize,
}

/// A pipeline's graph, as compiled by `#[pipeline]`.
#[derive(Debug, Clone, Copy)]
pub struct Graph {
    /// The pipeline's name.
    pub name: &'static str,
    /// The nodes; a node's index is its id.
    pub nodes: &'static [Node],
    /// Edges between node ids.
    pub edges: &'static [(usize, usize)],
}

impl Graph {
    /// How many segments the graph has.
    pub fn segment_count(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| n.segment)
            .max()
            .map_or(0, |m| m + 1)
    }
}
