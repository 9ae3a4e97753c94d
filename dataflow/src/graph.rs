//! The compiled graph of a pipeline: nodes, edges and segments (`render.rs` draws it).

// `NodeKind` (one variant per operator, with `operator()` and `ALL`) is expanded from the
// operator table of `dataflow-macros` (`src/operators.rs`): the one list of operators.
dataflow_macros::node_kind!();

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_and_the_manual_list_every_operator() {
        let readme = include_str!("../../README.md");
        let manual = include_str!("manual/pipeline.md");
        for kind in NodeKind::ALL.iter().filter(|k| **k != NodeKind::Source) {
            let row = format!("| `{}(", kind.operator());
            assert!(readme.contains(&row), "the README's table misses {row}");
            assert!(manual.contains(&row), "the manual's table misses {row}");
        }
    }
}
