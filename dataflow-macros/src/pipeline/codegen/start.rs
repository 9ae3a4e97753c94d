//! The body of `start`: the body's values, the stages bound once, the launch with the graph
//! and its stage names, the parameters' topics, the internal topics, and every segment.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};

use crate::operators::Kind;
use crate::pipeline::codegen::builder::Names;
use crate::pipeline::codegen::segment::segment;
use crate::pipeline::codegen::stages;
use crate::pipeline::codegen::tokens::{respan, var};
use crate::pipeline::graph::{Graph, Input};
use crate::pipeline::parse::Model;

/// The topic variable a segment reads.
pub(crate) fn input_var(model: &Model, graph: &Graph, segment: usize) -> TokenStream {
    match graph.segments[segment].input {
        Input::Source { param, .. } => model.params[param].name.to_token_stream(),
        Input::Internal { node } => var("x", node).to_token_stream(),
    }
}

/// The topic variable a node's output buffer writes to.
pub(crate) fn output_topic(model: &Model, graph: &Graph, node: usize) -> TokenStream {
    match graph.nodes[node].kind {
        Kind::Sink => model.params[graph.nodes[node].param.expect("sinks are params")]
            .name
            .to_token_stream(),
        _ => var("x", node).to_token_stream(),
    }
}

pub(crate) fn start_body(model: &Model, graph: &Graph, names: &Names) -> TokenStream {
    let name = model.function.sig.ident.to_string();
    let pipeline = &names.pipeline;
    let values = model.values.iter().map(|value| &value.stmt);
    let stage_bindings = stages::start_bindings(model, graph);
    let stage_names = stages::names(graph);
    // Each binding is spanned at its parameter, where a type that cannot be a topic's is
    // reported.
    let binds = model.params.iter().map(|param| {
        let name = &param.name;
        let ty = &param.ty;
        let name_str = name.to_string();
        quote_spanned! {name.span()=>
            let #name = ::dataflow::topics::bind::<#ty>(&mut __df_launch, #name_str, #name).await?;
        }
    });
    let internal_topics = graph.nodes.iter().enumerate().filter_map(|(index, node)| {
        let partitions = match node.kind {
            Kind::KeyBy => {
                let input = input_var(model, graph, node.segment);
                quote!(#input.partitions())
            }
            Kind::Merge | Kind::MapAsync | Kind::MapAsyncUnordered => {
                let segment = graph.downstream_segment(index);
                let inputs = graph.segments[segment]
                    .upstream
                    .iter()
                    .map(|&s| input_var(model, graph, s));
                quote!([#(#inputs.partitions()),*].into_iter().max().unwrap_or(1))
            }
            _ => return None,
        };
        let topic = var("x", index);
        let topic_name = &node.name;
        // Spanned at the operator, where a value that cannot cross tasks is reported.
        let create = respan(
            quote!(::dataflow::topics::internal(&mut __df_launch, #topic_name, #partitions).await),
            node.stage_span(),
        );
        Some(quote!(let #topic = #create?;))
    });
    let segments = (0..graph.segments.len()).map(|s| segment(model, graph, s));
    quote! {
        #(#values)*
        #stage_bindings
        let __df_graph = ::dataflow::__private::renamed(#pipeline::graph(), #stage_names);
        let mut __df_launch =
            ::dataflow::__private::Launch::new(#name, __df_graph, __df_options).await?;
        #(#binds)*
        #(#internal_topics)*
        #(#segments)*
        ::core::result::Result::Ok(__df_launch.finish())
    }
}
