//! Code generation: the pipeline's typed builder, its graph, and one fused loop per segment.
//!
//! Every stage call goes through the operator's function in `dataflow::signature`, spanned at
//! the user's stage, so that rustc reports a wrong stage there and in its own words. Generated
//! names start with `__df_`; the runtime is reached through `::dataflow::topics` and
//! `::dataflow::__private` only.

mod builder;
mod call;
mod emit;
mod graph_fn;
mod segment;
mod stages;
mod start;
mod tokens;

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;
use crate::pipeline::graph::Graph;
use crate::pipeline::parse::Model;

pub(crate) fn generate(model: &Model, graph: &Graph, errors: &Errors) -> TokenStream {
    let names = builder::Names::new(model);
    let graph_fn = graph_fn::graph_function(&model.function.sig.ident.to_string(), graph);
    // After an error, `start` is a placeholder: the builder still type-checks, so that ours
    // are the only errors.
    let start_body = if errors.is_empty() {
        start::start_body(model, graph, &names)
    } else {
        quote!(::core::unimplemented!("the pipeline did not compile"))
    };
    let compile_errors = errors.to_compile_errors();
    let declared = model
        .function
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            syn::FnArg::Typed(typed) => Some(&typed.ty),
            syn::FnArg::Receiver(_) => None,
        });
    let items = builder::items(model, &names, &graph_fn, &start_body);
    quote! {
        #compile_errors

        // The parameters' declared types (`Source<T>`, `Sink<T>`), so that their imports count
        // as used.
        const _: ::core::option::Option<fn(#(#declared),*)> = ::core::option::Option::None;

        #items
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;
    use crate::pipeline::{build, parse};

    fn generated(function: syn::ItemFn) -> String {
        let mut errors = Errors::new();
        let model = parse::parse(function, &mut errors);
        let graph = build::build(&model, &mut errors);
        assert!(errors.is_empty(), "{:?}", errors.messages());
        generate(&model, &graph, &errors).to_string()
    }

    #[test]
    fn path_stages_are_bound_once_in_start_and_named_there() {
        let out = generated(parse_quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                input.map(passthrough).to(out);
            }
        });
        assert!(out.contains("let (__df_name2 , __df_stage2)"), "{out}");
        assert!(out.contains("__dataflow_name (\"passthrough\")"), "{out}");
        assert!(
            out.contains("renamed (F :: graph () , & [(2usize , __df_name2)])"),
            "{out}"
        );
    }

    #[test]
    fn every_parameter_is_a_typestate_bound_of_start() {
        let out = generated(parse_quote! {
            fn page_views(raw: Source<String>, views: Sink<u64>) {
                raw.map(len).to(views);
            }
        });
        assert!(out.contains("pub trait raw < T >"), "{out}");
        assert!(out.contains("Raw : page_views :: raw < String >"), "{out}");
        assert!(out.contains("Views : page_views :: views < u64 >"), "{out}");
        assert!(
            out.contains("struct PageViewsBuilder < Raw = :: dataflow :: Unbound"),
            "{out}"
        );
    }

    #[test]
    fn a_type_parameter_never_hides_a_type_of_the_parameters() {
        let out = generated(parse_quote! {
            fn f(raw: Source<Raw>, out: Sink<Raw>) {
                raw.to(out);
            }
        });
        assert!(out.contains("struct FBuilder < RawState ="), "{out}");
    }

    #[test]
    fn values_a_segment_mentions_are_cloned_into_each_task() {
        let out = generated(parse_quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                let threshold = 10;
                let unused = 3;
                input.filter(|x| *x > threshold).to(out);
            }
        });
        assert!(out.contains("let threshold = 10 ;"), "{out}");
        assert!(
            out.contains("let threshold = :: core :: clone :: Clone :: clone (& threshold)"),
            "{out}"
        );
        assert!(!out.contains("clone (& unused)"), "{out}");
    }
}
