//! One segment: a task per partition of its input, running its stages fused in one loop.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::operators::Kind;
use crate::pipeline::codegen::call::call;
use crate::pipeline::codegen::emit::{classify_then, emit_port};
use crate::pipeline::codegen::start::{input_var, output_topic, port_segment};
use crate::pipeline::codegen::tokens::{respan, var};
use crate::pipeline::graph::{Graph, Input, Port};
use crate::pipeline::parse::Model;

pub(crate) fn segment(model: &Model, graph: &Graph, s: usize) -> TokenStream {
    let seg = &graph.segments[s];
    let input = input_var(model, graph, s);
    let upstream = &seg.upstream;
    // Topics this segment writes to: its key_by topics, merges and sinks fed from it.
    let mut outputs: Vec<usize> = Vec::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        let writes = match node.kind {
            Kind::KeyBy => node.segment == s,
            Kind::Merge | Kind::MapAsync | Kind::MapAsyncUnordered | Kind::Sink => {
                node.inputs.iter().any(|&p| port_segment(graph, p) == s)
            }
            _ => false,
        };
        if writes {
            outputs.push(index);
        }
    }
    let topics: Vec<TokenStream> = outputs
        .iter()
        .map(|&n| output_topic(model, graph, n))
        .collect();
    let output_vars: Vec<Ident> = outputs.iter().map(|&n| var("o", n)).collect();
    // Stages of this segment, created once per task.
    let mut preludes = Vec::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        if node.segment != s || matches!(node.kind, Kind::Source | Kind::Sink | Kind::Merge) {
            continue;
        }
        if let Some(stage) = &node.stage
            && !matches!(stage, syn::Expr::Closure(_))
        {
            let v = var("s", index);
            let span = stage.span();
            preludes.push(quote_spanned! {span=>
                let mut #v = {
                    #[allow(unused_imports)]
                    use ::dataflow::__private::{UnwrapNamed as _, UnwrapPlain as _};
                    (&::dataflow::__private::StageArg::new(#stage)).__dataflow_unwrap()
                };
            });
        }
        if matches!(node.kind, Kind::Count | Kind::Fold | Kind::Reduce) {
            let state = var("st", index);
            preludes.push(quote!(let mut #state = ::dataflow::__private::HashMap::new();));
        }
        if let Some(init) = &node.init {
            let v = var("init", index);
            preludes.push(quote!(let #v = #init;));
        }
    }
    let value = format_ident!("__df_in");
    let async_head = match seg.input {
        Input::Internal { node } => matches!(
            graph.nodes[node].kind,
            Kind::MapAsync | Kind::MapAsyncUnordered
        )
        .then_some(node),
        Input::Source { .. } => None,
    };
    let body = match seg.input {
        Input::Internal { node } if async_head.is_some() => {
            let output = var("v", node);
            let result = format_ident!("__df_r");
            classify_then(graph, node, &result, &output)
        }
        Input::Source { node, .. } => {
            let rest = emit_port(graph, Port { node, output: 0 }, &value);
            quote!(__df_cx.count(#node); #rest)
        }
        Input::Internal { node } if graph.nodes[node].kind == Kind::Merge => {
            let rest = emit_port(graph, Port { node, output: 0 }, &value);
            quote!(__df_cx.count(#node); #rest)
        }
        Input::Internal { node } => emit_port(graph, Port { node, output: 0 }, &value),
    };
    // A segment fed by a repartition or a merge is spanned at that operator, where a value that
    // cannot cross tasks is reported.
    let (read, await_started) = match seg.input {
        Input::Internal { node } => {
            let node = &graph.nodes[node];
            let span = node.stage_span();
            (
                respan(quote!(::dataflow::topics::read), span),
                respan(quote!(.await), span),
            )
        }
        Input::Source { .. } => (quote!(::dataflow::topics::read), quote!(.await)),
    };
    let next_batch = match async_head {
        Some(node) => {
            let limit = graph.nodes[node]
                .limit
                .as_ref()
                .map_or_else(|| quote!(16usize), |limit| quote!(#limit));
            let ordered = graph.nodes[node].kind == Kind::MapAsync;
            let stage = call(graph, node, "map_async", quote!(#value));
            quote! {
                __df_task
                    .next_batch_async(#node, #limit, #ordered, |#value| #stage, |__df_r, __df_cx| { #body })
                    .await
            }
        }
        None => quote! {
            __df_task
                .next_batch(|#value, __df_cx| { #body })
                .await
        },
    };
    quote! {
        {
            #(let #topics = ::core::clone::Clone::clone(&#topics);)*
            #read(&mut __df_launch, #s, &#input, &[#(#upstream),*], move |mut __df_task| {
                #(let #topics = ::core::clone::Clone::clone(&#topics);)*
                async move {
                    #(let mut #output_vars = ::dataflow::topics::output(&#topics).await?;)*
                    #(#preludes)*
                    while #next_batch {
                        #(__df_task.flush(&mut #output_vars).await?;)*
                        __df_task.commit().await?;
                    }
                    __df_task.end().await
                }
            }) #await_started ?;
        }
    }
}
