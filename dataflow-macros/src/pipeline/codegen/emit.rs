//! The fused code of a segment: each node hands its output to its consumers.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::operators::Kind;
use crate::pipeline::codegen::call::{call, timed_call};
use crate::pipeline::codegen::tokens::{respan, var};
use crate::pipeline::graph::{Graph, Port};

/// Code that hands `value` to every consumer of `port`: a copy to each but the last, made
/// where the stream is used again (a value that cannot be copied is reported there).
pub(crate) fn emit_port(graph: &Graph, port: Port, value: &Ident) -> TokenStream {
    let consumers: Vec<usize> = graph.consumers(port).collect();
    let Some((&last, rest)) = consumers.split_last() else {
        return quote!(let _ = #value;);
    };
    let copies = rest.iter().zip(&consumers[1..]).map(|(&consumer, &next)| {
        let copy = format_ident!("__df_copy{}", consumer);
        let code = emit_consumer(graph, consumer, port, &copy);
        // Only the argument is spanned at the use: rustc blames it, as in a plain call.
        let argument = respan(quote!(&#value), use_span(graph, next, port));
        let copied = quote!(::dataflow::topics::fan_out(#argument));
        quote! {
            {
                let #copy = #copied;
                #code
            }
        }
    });
    let last = emit_consumer(graph, last, port, value);
    quote!(#(#copies)* #last)
}

/// Where `consumer` uses the stream of `port`.
fn use_span(graph: &Graph, consumer: usize, port: Port) -> proc_macro2::Span {
    let node = &graph.nodes[consumer];
    node.inputs
        .iter()
        .position(|&p| p == port)
        .map_or(node.span, |i| node.use_spans[i])
}

fn emit_consumer(graph: &Graph, consumer: usize, from: Port, value: &Ident) -> TokenStream {
    let node = &graph.nodes[consumer];
    let span = node
        .inputs
        .iter()
        .position(|&p| p == from)
        .map_or(node.span, |i| node.input_spans[i]);
    let out = var("o", consumer);
    match node.kind {
        Kind::Sink => {
            let keyed = graph.nodes[from.node].keyed;
            let push = if keyed {
                respan(
                    quote!(::dataflow::topics::to_sink_keyed(&mut #out, #value)),
                    span,
                )
            } else {
                respan(
                    quote!(::dataflow::topics::to_sink(&mut #out, __df_cx.partition(), #value)),
                    span,
                )
            };
            quote!(__df_cx.sink(#consumer); #push;)
        }
        Kind::Merge | Kind::MapAsync | Kind::MapAsyncUnordered => respan(
            quote!(#out.push_from(&__df_cx, ::dataflow::topics::exchange(#value));),
            span,
        ),
        _ => emit_node(graph, consumer, value),
    }
}

/// Sends an `Err` output of node `index` to the dead letters and passes an `Ok` (or a plain
/// value) on as `output`.
pub(crate) fn classify_then(
    graph: &Graph,
    index: usize,
    result: &Ident,
    output: &Ident,
) -> TokenStream {
    let rest = emit_port(
        graph,
        Port {
            node: index,
            output: 0,
        },
        output,
    );
    let node = &graph.nodes[index];
    let span = node.span;
    let classified = respan(
        quote! {
            {
                #[allow(unused_imports)]
                use ::dataflow::signature::output::{ClassifyFuture as _, ClassifyResult as _, ClassifyPlain as _};
                (&#result).__dataflow_classify()
            }
            .into_result(#result)
        },
        node.stage_span(),
    );
    quote_spanned! {span=>
        #[allow(unreachable_patterns)]
        match #classified
        {
            ::core::result::Result::Ok(#output) => { #rest }
            ::core::result::Result::Err(__df_e) => __df_cx.fail(#index, __df_e),
        }
    }
}

fn emit_node(graph: &Graph, index: usize, value: &Ident) -> TokenStream {
    let node = &graph.nodes[index];
    let out_value = var("v", index);
    let downstream = |v: &Ident| {
        emit_port(
            graph,
            Port {
                node: index,
                output: 0,
            },
            v,
        )
    };
    let span = node.span;
    match node.kind {
        Kind::Map => {
            let call = timed_call(graph, index, "map", quote!(#value));
            let result = format_ident!("__df_r");
            let rest = classify_then(graph, index, &result, &out_value);
            quote_spanned! {span=>
                __df_cx.count(#index);
                let #result = #call;
                #rest
            }
        }
        Kind::Filter => {
            let call = timed_call(graph, index, "filter", quote!(&#value));
            let rest = downstream(value);
            quote!(__df_cx.count(#index); if #call { #rest })
        }
        Kind::FilterMap => {
            let call = timed_call(graph, index, "filter_map", quote!(#value));
            let rest = downstream(&out_value);
            quote!(__df_cx.count(#index); if let ::core::option::Option::Some(#out_value) = #call { #rest })
        }
        Kind::FlatMap => {
            let call = timed_call(graph, index, "flat_map", quote!(#value));
            let rest = downstream(&out_value);
            // The loop is spelled out and spanned at the stage: a stage whose output is not
            // iterable is reported there once (rustc drops the same error at the same place).
            let items = respan(
                quote!(let mut __df_items = ::core::iter::IntoIterator::into_iter(#call);),
                node.stage_span(),
            );
            let next = respan(
                quote!(::core::iter::Iterator::next(&mut __df_items)),
                node.stage_span(),
            );
            quote! {
                __df_cx.count(#index);
                #items
                while let ::core::option::Option::Some(#out_value) = #next { #rest }
            }
        }
        Kind::Inspect => {
            let call = timed_call(graph, index, "inspect", quote!(&#value));
            let rest = downstream(value);
            quote!(__df_cx.count(#index); #call; #rest)
        }
        Kind::KeyBy => {
            let call = timed_call(graph, index, "key_by", quote!(&#value));
            let out = var("o", index);
            let stage_span = node.stage_span();
            let push = respan(
                quote!(#out.push_pair_from(&__df_cx, ::dataflow::topics::exchange((__df_k, #value)));),
                stage_span,
            );
            quote! {
                __df_cx.count(#index);
                let __df_k = #call;
                #push
            }
        }
        Kind::Split => {
            let call = timed_call(graph, index, "split", quote!(&#value));
            let yes = emit_port(
                graph,
                Port {
                    node: index,
                    output: 0,
                },
                value,
            );
            let no = emit_port(
                graph,
                Port {
                    node: index,
                    output: 1,
                },
                value,
            );
            quote!(__df_cx.count(#index); if #call { #yes } else { #no })
        }
        Kind::SplitResult => {
            let call = timed_call(graph, index, "split_result", quote!(#value));
            let err_value = var("w", index);
            let ok = emit_port(
                graph,
                Port {
                    node: index,
                    output: 0,
                },
                &out_value,
            );
            let err = emit_port(
                graph,
                Port {
                    node: index,
                    output: 1,
                },
                &err_value,
            );
            quote! {
                __df_cx.count(#index);
                match #call {
                    ::core::result::Result::Ok(#out_value) => { #ok }
                    ::core::result::Result::Err(#err_value) => { #err }
                }
            }
        }
        Kind::Count => {
            let state = var("st", index);
            let rest = downstream(&out_value);
            quote_spanned! {span=>
                __df_cx.count(#index);
                let #out_value = __df_cx.time(#index, || {
                    let (__df_key, _) = #value;
                    let __df_slot = #state.entry(::core::clone::Clone::clone(&__df_key)).or_insert(0u64);
                    *__df_slot += 1;
                    (__df_key, *__df_slot)
                });
                #rest
            }
        }
        Kind::Fold => {
            let state = var("st", index);
            let init = var("init", index);
            let apply = call(graph, index, "fold", quote!(__df_acc, __df_x));
            let rest = downstream(&out_value);
            quote_spanned! {span=>
                __df_cx.count(#index);
                let #out_value = __df_cx.time(#index, || {
                    let (__df_key, __df_x) = #value;
                    let __df_acc = #state
                        .remove(&__df_key)
                        .unwrap_or_else(|| ::core::clone::Clone::clone(&#init));
                    let __df_acc = #apply;
                    #state.insert(
                        ::core::clone::Clone::clone(&__df_key),
                        ::core::clone::Clone::clone(&__df_acc),
                    );
                    (__df_key, __df_acc)
                });
                #rest
            }
        }
        Kind::Reduce => {
            let state = var("st", index);
            let apply = call(graph, index, "reduce", quote!(__df_acc, __df_x));
            let rest = downstream(&out_value);
            quote_spanned! {span=>
                __df_cx.count(#index);
                let #out_value = __df_cx.time(#index, || {
                    let (__df_key, __df_x) = #value;
                    let __df_acc = match #state.remove(&__df_key) {
                        ::core::option::Option::Some(__df_acc) => #apply,
                        ::core::option::Option::None => __df_x,
                    };
                    #state.insert(::core::clone::Clone::clone(&__df_key), ::core::clone::Clone::clone(&__df_acc));
                    (__df_key, __df_acc)
                });
                #rest
            }
        }
        Kind::Source | Kind::Sink | Kind::Merge | Kind::MapAsync | Kind::MapAsyncUnordered => {
            unreachable!("handled by emit_consumer")
        }
    }
}
