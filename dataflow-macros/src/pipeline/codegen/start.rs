//! The body of `start`: bind the parameters, make the internal topics, start every segment.

use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens, quote};

use crate::operators::Kind;
use crate::pipeline::codegen::segment::segment;
use crate::pipeline::codegen::tokens::{respan, var};
use crate::pipeline::graph::{Graph, Input, Port};
use crate::pipeline::parse::Model;

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

pub(crate) fn start_body(model: &Model, graph: &Graph, pipeline: &Ident) -> TokenStream {
    let name = model.function.sig.ident.to_string();
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
        let span = node.stage_span();
        let create = respan(
            quote!(::dataflow::topics::internal(&mut __df_launch, #topic_name, #partitions).await),
            span,
        );
        Some(quote!(let #topic = #create?;))
    });
    let segments = (0..graph.segments.len()).map(|s| segment(model, graph, s));
    let params: Vec<&Ident> = model.params.iter().map(|p| &p.name).collect();
    let param_strs: Vec<String> = params.iter().map(ToString::to_string).collect();
    quote! {
        let mut __df_launch = ::dataflow::__private::Launch::new(#name, #pipeline::graph(), self.__df_options).await?;
        #(
            let #params = ::dataflow::topics::bind(&mut __df_launch, #param_strs, self.#params).await?;
        )*
        #(#internal_topics)*
        #(#segments)*
        ::core::result::Result::Ok(__df_launch.finish())
    }
}

/// The segment that receives what `port` carries.
pub(crate) fn port_segment(graph: &Graph, port: Port) -> usize {
    graph.downstream_segment(port.node)
}
