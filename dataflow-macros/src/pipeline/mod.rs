//! `#[pipeline]`: parse the function into a model, build and check its graph, generate the
//! typed builder and the fused segments.

mod build;
mod check;
mod codegen;
mod graph;
mod parse;

use proc_macro2::TokenStream;

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
            // The item as it was, so that ours is the only error.
            let compile_errors = errors.to_compile_errors();
            return quote::quote!(#compile_errors #item);
        }
    };
    let model = parse::parse(function, &mut errors);
    let graph = build::build(&model, &mut errors);
    codegen::generate(&model, &graph, &errors)
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn expanded(item: TokenStream) -> String {
        expand(TokenStream::new(), item).to_string()
    }

    #[test]
    fn a_pipeline_becomes_a_type_with_a_builder_and_a_graph() {
        let out = expanded(quote! {
            fn page_views(raw: Source<String>, views: Sink<(String, u64)>) {
                raw.map(parse).key_by(page).count().to(views);
            }
        });
        assert!(out.contains("struct PageViews ;"), "{out}");
        assert!(out.contains("struct PageViewsBuilder"), "{out}");
        assert!(out.contains("fn graph () -> :: dataflow :: Graph"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn every_stage_is_called_through_its_operator_signature() {
        let out = expanded(quote! {
            fn f(input: Source<String>, out: Sink<u32>) {
                input.filter(keep).map(length).to(out);
            }
        });
        assert!(out.contains(":: dataflow :: signature :: filter"), "{out}");
        assert!(out.contains(":: dataflow :: signature :: map"), "{out}");
    }

    #[test]
    fn on_error_the_errors_and_a_placeholder_start_are_emitted() {
        let out = expanded(quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                input.mapp(inc).to(out);
            }
        });
        assert!(
            out.contains("compile_error ! { \"unknown operator `mapp`"),
            "{out}"
        );
        assert!(
            out.contains("struct FBuilder"),
            "the builder is still emitted: {out}"
        );
        assert!(out.contains("unimplemented"), "{out}");
    }

    #[test]
    fn a_non_function_is_refused_and_left_as_it_was() {
        let out = expanded(quote!(
            struct NotAPipeline;
        ));
        assert!(out.starts_with(":: core :: compile_error !"), "{out}");
        assert!(out.ends_with("struct NotAPipeline ;"), "{out}");
    }

    #[test]
    fn generated_names_are_prefixed() {
        let out = expanded(quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                input.map(inc).to(out);
            }
        });
        for word in out.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.starts_with("__") {
                assert!(
                    word.starts_with("__df_")
                        || word.starts_with("__dataflow_")
                        || word == "__private",
                    "unprefixed generated name `{word}`"
                );
            }
        }
    }
}
