//! One segment: a task per partition of its input, running its stages fused in one loop.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::operators::Kind;
use crate::pipeline::codegen::call::call;
use crate::pipeline::codegen::emit::{classify_then, emit_port};
use crate::pipeline::codegen::stages::captures;
use crate::pipeline::codegen::start::{input_var, output_topic};
use crate::pipeline::codegen::tokens::{respan, var};
use crate::pipeline::graph::{Graph, Input, Port};
use crate::pipeline::parse::Model;

/// The topics segment `s` writes: its `key_by` topics, and the merges, async stages and
/// sinks fed from it.
fn outputs(graph: &Graph, s: usize) -> Vec<usize> {
    graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| match node.kind {
            Kind::KeyBy => node.segment == s,
            Kind::Merge | Kind::MapAsync | Kind::MapAsyncUnordered | Kind::Sink => node
                .inputs
                .iter()
                .any(|&p| graph.downstream_segment(p.node) == s),
            _ => false,
        })
        .map(|(index, _)| index)
        .collect()
}

pub(crate) fn segment(model: &Model, graph: &Graph, s: usize) -> TokenStream {
    let seg = &graph.segments[s];
    let input = input_var(model, graph, s);
    let upstream = &seg.upstream;
    let outputs = outputs(graph, s);
    let topics: Vec<TokenStream> = outputs
        .iter()
        .map(|&n| output_topic(model, graph, n))
        .collect();
    // Each output is opened where a value that cannot be written to it is reported: a sink
    // at its parameter, an internal topic at its operator.
    let open_outputs = outputs.iter().zip(&topics).map(|(&n, topic)| {
        let output = var("o", n);
        let span = graph.nodes[n].stage_span();
        let open = respan(quote!(::dataflow::topics::output(&#topic).await), span);
        quote!(let mut #output = #open?;)
    });
    let output_vars: Vec<Ident> = outputs.iter().map(|&n| var("o", n)).collect();
    let captures = captures(model, graph, s);
    let (outer, per_task, preludes) = (&captures.outer, &captures.per_task, &captures.preludes);
    let value = format_ident!("__df_in");
    let async_head = match seg.input {
        Input::Internal { node } if graph.nodes[node].kind.is_async() => Some(node),
        _ => None,
    };
    let body = match seg.input {
        Input::Internal { node } if async_head.is_some() => {
            let output = var("v", node);
            let result = format_ident!("__df_r");
            classify_then(graph, node, &result, &output)
        }
        Input::Source { node, .. } => {
            let rest = emit_port(graph, Port::first(node), &value);
            quote!(__df_cx.count(#node); #rest)
        }
        Input::Internal { node } if graph.nodes[node].kind == Kind::Merge => {
            let rest = emit_port(graph, Port::first(node), &value);
            quote!(__df_cx.count(#node); #rest)
        }
        Input::Internal { node } => emit_port(graph, Port::first(node), &value),
    };
    // A segment fed by a repartition or a merge is spanned at that operator, where a value that
    // cannot cross tasks is reported.
    let (read, input_arg, await_started) = match seg.input {
        Input::Internal { node } => {
            let span = graph.nodes[node].stage_span();
            (
                respan(quote!(::dataflow::topics::read), span),
                respan(quote!(&#input), span),
                respan(quote!(.await), span),
            )
        }
        Input::Source { .. } => (
            quote!(::dataflow::topics::read),
            quote!(&#input),
            quote!(.await),
        ),
    };
    let next_batch = match async_head {
        Some(node) => {
            let limit = graph.nodes[node]
                .limit
                .as_ref()
                .map_or_else(|| quote!(16usize), |limit| quote!(#limit));
            let ordered = graph.nodes[node].kind == Kind::MapAsync;
            let stage = call(graph, node, "map_async", quote!(#value));
            // Spanned at the stage: a stage that is not async is reported there once (the
            // runtime's own `Future` bound is implied by that error and not repeated).
            let span = graph.nodes[node].stage_span();
            let receiver = respan(quote!(__df_task.next_batch_async), span);
            let await_batch = respan(quote!(.await), span);
            quote! {
                #receiver(#node, #limit, #ordered, |#value| #stage, |__df_r, __df_cx| { #body })
                    #await_batch
            }
        }
        None => quote! {
            __df_task
                .next_batch(|#value, __df_cx| { #body })
                .await
        },
    };
    // A segment with aggregates hands their states to the checkpoints.
    let (commit, end) = if captures.states.is_empty() {
        (
            quote!(__df_task.commit().await?;),
            quote!(__df_task.end().await),
        )
    } else {
        let states = &captures.states;
        (
            quote!(__df_task.commit_with(&mut [#(#states),*]).await?;),
            quote!(__df_task.end_with(&mut [#(#states),*]).await),
        )
    };
    quote! {
        {
            #(let #topics = ::core::clone::Clone::clone(&#topics);)*
            #(#outer)*
            #read(&mut __df_launch, #s, #input_arg, &[#(#upstream),*], move |mut __df_task| {
                #(let #topics = ::core::clone::Clone::clone(&#topics);)*
                #(#per_task)*
                async move {
                    #(#open_outputs)*
                    #(#preludes)*
                    while #next_batch {
                        #(__df_task.flush(&mut #output_vars).await?;)*
                        #commit
                    }
                    #end
                }
            }) #await_started ?;
        }
    }
}
