//! Calls of a stage, through the operator's function in `dataflow::signature`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::pipeline::codegen::tokens::{respan, var};
use crate::pipeline::graph::Graph;

/// A timed call of node `index`'s stage through `dataflow::signature::<operator>`, spanned at
/// the stage.
pub(crate) fn timed_call(
    graph: &Graph,
    index: usize,
    operator: &str,
    args: TokenStream,
) -> TokenStream {
    let span = graph.nodes[index]
        .stage
        .as_ref()
        .expect("stage nodes have a stage")
        .span();
    let call = call(graph, index, operator, args);
    respan(quote!(__df_cx.time(#index, || #call)), span)
}

/// A call of node `index`'s stage through `dataflow::signature::<operator>`.
pub(crate) fn call(graph: &Graph, index: usize, operator: &str, args: TokenStream) -> TokenStream {
    let node = &graph.nodes[index];
    let stage = node.stage.as_ref().expect("stage nodes have a stage");
    let span = stage.span();
    let function = format_ident!("{}", operator, span = span);
    let args = respan(args, span);
    match stage {
        // A closure needs `FnMut` bounds for rustc to infer its argument types.
        syn::Expr::Closure(closure) => quote_spanned! {span=>
            ::dataflow::signature::closure::#function(#args, &mut (#closure))
        },
        // Functions go through the `Stage` trait. All of the call is spanned at the stage, so
        // that rustc reports a stage of the wrong shape there.
        _ => {
            let v = var("s", index);
            respan(
                quote!(::dataflow::signature::#function(#args, &mut #v)),
                span,
            )
        }
    }
}
