//! The compiled graph drawn as Mermaid or Graphviz DOT, with live metrics when running.

use std::fmt::Write as _;

use crate::graph::{Graph, NodeKind};
use crate::metrics::{Metrics, human_nanos};

impl Graph {
    /// The graph as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        self.mermaid_with(None)
    }

    /// The graph as Graphviz DOT.
    pub fn to_dot(&self) -> String {
        self.dot_with(None)
    }

    fn label(&self, id: usize, metrics: Option<&Metrics>) -> String {
        let node = &self.nodes[id];
        let mut label = format!("{}: {}", node.name, node.kind.operator());
        if let Some(stats) = metrics.and_then(|m| m.stages.get(id)) {
            let _ = write!(label, "<br/>{} recs", stats.count);
            if let Some(p99) = stats.p99_nanos {
                let _ = write!(label, ", p99 {}", human_nanos(p99));
            }
        }
        label
    }

    pub(crate) fn mermaid_with(&self, metrics: Option<&Metrics>) -> String {
        let mut out = String::from("flowchart LR\n");
        for segment in 0..self.segment_count() {
            let _ = writeln!(out, "  subgraph s{segment}[segment {segment}]");
            for (id, node) in self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.segment == segment)
            {
                let label = self.label(id, metrics).replace('"', "'");
                let shape = match node.kind {
                    NodeKind::Source | NodeKind::Sink => ("[(\"", "\")]"),
                    _ => ("[\"", "\"]"),
                };
                let _ = writeln!(out, "    n{id}{}{label}{}", shape.0, shape.1);
            }
            out.push_str("  end\n");
        }
        for (from, to) in self.edges {
            let arrow = if self.nodes[*from].segment == self.nodes[*to].segment {
                "-->"
            } else {
                "-. topic .->"
            };
            let _ = writeln!(out, "  n{from} {arrow} n{to}");
        }
        out
    }

    pub(crate) fn dot_with(&self, metrics: Option<&Metrics>) -> String {
        let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n", self.name);
        for segment in 0..self.segment_count() {
            let _ = writeln!(
                out,
                "  subgraph cluster_{segment} {{\n    label=\"segment {segment}\";"
            );
            for (id, node) in self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.segment == segment)
            {
                let label = self
                    .label(id, metrics)
                    .replace("<br/>", "\\n")
                    .replace('"', "'");
                let shape = match node.kind {
                    NodeKind::Source | NodeKind::Sink => "cylinder",
                    _ => "box",
                };
                let _ = writeln!(out, "    n{id} [label=\"{label}\", shape={shape}];");
            }
            out.push_str("  }\n");
        }
        for (from, to) in self.edges {
            let style = if self.nodes[*from].segment == self.nodes[*to].segment {
                ""
            } else {
                " [style=dashed, label=\"topic\"]"
            };
            let _ = writeln!(out, "  n{from} -> n{to}{style};");
        }
        out.push_str("}\n");
        out
    }
}
