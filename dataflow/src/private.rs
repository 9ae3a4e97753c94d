//! What generated code needs and users do not. Not a public API: it may change in any
//! release.

use std::cell::Cell;

pub use crate::runtime::launch::Launch;
pub use crate::runtime::output::Output;
pub use crate::runtime::task::{Cx, Task};
pub use crate::stage::Named;
pub use broker::Topic;
pub use std::collections::HashMap;

use crate::error::StartError;
use crate::graph::{Graph, Node};
use crate::runtime::running::Running;

/// What a generated builder's `start` returns.
pub type StartFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Running, StartError>> + Send + 'static>,
>;

/// A stage as written in a pipeline, before the operator looks at it: a function, a closure,
/// or a `#[stage(name = "...")]` function ([`Named`]). Method resolution through `&` picks
/// [`UnwrapNamed`] / [`NameNamed`] for the last, [`UnwrapPlain`] / [`NamePlain`] for the
/// others (autoref specialization), without naming the stage's type: a generic function's
/// type parameters are still inferred from the stream it is used on.
pub struct StageArg<F>(Cell<Option<F>>);

impl<F> StageArg<F> {
    #[inline(always)]
    pub fn new(stage: F) -> Self {
        Self(Cell::new(Some(stage)))
    }
}

/// Chosen for `#[stage(name = "...")]` functions: the function inside.
pub trait UnwrapNamed {
    type Function;
    fn __dataflow_unwrap(&self) -> Self::Function;
}

impl<F: Copy> UnwrapNamed for StageArg<Named<F>> {
    type Function = F;
    #[inline(always)]
    fn __dataflow_unwrap(&self) -> F {
        *self.0.take().expect("unwrapped once")
    }
}

/// Chosen for everything else: the stage itself.
pub trait UnwrapPlain {
    type Function;
    fn __dataflow_unwrap(&self) -> Self::Function;
}

impl<F> UnwrapPlain for &StageArg<F> {
    type Function = F;
    #[inline(always)]
    fn __dataflow_unwrap(&self) -> F {
        self.0.take().expect("unwrapped once")
    }
}

/// The name of a `#[stage(name = "...")]` function.
pub trait NameNamed {
    fn __dataflow_name(&self, default: &'static str) -> &'static str;
}

impl<F> NameNamed for StageArg<Named<F>> {
    fn __dataflow_name(&self, default: &'static str) -> &'static str {
        let named = self.0.take().expect("named before it is unwrapped");
        let name = named.name();
        self.0.set(Some(named));
        let _ = default;
        name
    }
}

/// The name of any other stage: the one the pipeline gives it.
pub trait NamePlain {
    fn __dataflow_name(&self, default: &'static str) -> &'static str;
}

impl<F> NamePlain for &StageArg<F> {
    fn __dataflow_name(&self, default: &'static str) -> &'static str {
        default
    }
}

/// Leaks a graph description once per pipeline type.
pub fn leak<T>(items: Vec<T>) -> &'static [T] {
    Vec::leak(items)
}

/// `graph` with the names of its `#[stage(name = "...")]` stages, known once the pipeline's
/// types are (at `start`): `names` holds `(node, name)`. A name already taken gets `-2`,
/// `-3`, ... as in the compiled graph. Leaks the new node list, once per start that renames.
pub fn renamed(graph: Graph, names: &[(usize, &'static str)]) -> Graph {
    if names
        .iter()
        .all(|&(node, name)| graph.nodes[node].name == name)
    {
        return graph;
    }
    let mut nodes: Vec<Node> = graph.nodes.to_vec();
    for &(node, name) in names {
        nodes[node].name = name;
    }
    let mut taken = std::collections::HashSet::new();
    for node in &mut nodes {
        let base = node.name;
        if taken.insert(base) {
            continue;
        }
        let unique = (2..)
            .map(|n| format!("{base}-{n}"))
            .find(|candidate| !taken.contains(candidate.as_str()))
            .expect("some suffix is free");
        let unique: &'static str = String::leak(unique);
        taken.insert(unique);
        node.name = unique;
    }
    Graph {
        nodes: leak(nodes),
        ..graph
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::NodeKind;

    fn node(name: &'static str) -> Node {
        Node {
            name,
            kind: NodeKind::Map,
            segment: 0,
        }
    }

    #[test]
    fn renaming_keeps_names_unique() {
        let graph = Graph {
            name: "g",
            nodes: leak(vec![node("a"), node("b"), node("c")]),
            edges: &[],
        };
        let renamed = renamed(graph, &[(1, "x"), (2, "x")]);
        let names: Vec<&str> = renamed.nodes.iter().map(|n| n.name).collect();
        assert_eq!(names, ["a", "x", "x-2"]);
    }

    #[test]
    fn nothing_renamed_is_the_same_graph() {
        let graph = Graph {
            name: "g",
            nodes: leak(vec![node("a")]),
            edges: &[],
        };
        assert!(std::ptr::eq(renamed(graph, &[(0, "a")]).nodes, graph.nodes));
    }
}
