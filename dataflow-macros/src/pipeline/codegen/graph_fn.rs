//! `Pipeline::graph()`: the compiled graph as data, with the names known at compile time
//! (`start` adds those of `#[stage(name = "...")]` functions, see `stages`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::pipeline::graph::Graph;

pub(crate) fn graph_function(name: &str, graph: &Graph) -> TokenStream {
    let nodes = graph.nodes.iter().map(|node| {
        let name = &node.name;
        let kind = format_ident!("{}", node.kind.variant());
        let segment = node.segment;
        quote!(::dataflow::Node { name: #name, kind: ::dataflow::NodeKind::#kind, segment: #segment })
    });
    let edges = graph
        .nodes
        .iter()
        .enumerate()
        .flat_map(|(to, node)| node.inputs.iter().map(move |p| (p.node, to)))
        .map(|(from, to)| quote!((#from, #to)));
    quote! {
        static GRAPH: ::std::sync::OnceLock<::dataflow::Graph> = ::std::sync::OnceLock::new();
        *GRAPH.get_or_init(|| ::dataflow::Graph {
            name: #name,
            nodes: ::dataflow::__private::leak(::std::vec![#(#nodes),*]),
            edges: ::dataflow::__private::leak(::std::vec![#(#edges),*]),
        })
    }
}
