//! `#[pipeline]`: parse the function into a model, build and check the graph, generate the
//! typed builder and the fused segments.

mod codegen;
mod graph;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    if !attr.is_empty() {
        errors.push_spanned(&attr, "`#[pipeline]` takes no arguments");
    }
    let function: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            errors.push_spanned(
                &item,
                "`#[pipeline]` applies to a function whose parameters are sources and sinks",
            );
            let compile_errors = errors.to_compile_errors();
            return quote!(#compile_errors);
        }
    };
    let model = parse::parse(function, &mut errors);
    let graph = graph::build(&model, &mut errors);
    codegen::generate(&model, &graph, &errors)
}
