//! `#[stage]`: checks a stage function and, with `name = "..."`, names it.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;

use crate::errors::Errors;

const ARGUMENTS: &str = "`name`";

struct Options {
    name: Option<syn::LitStr>,
}

fn parse_options(attr: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options { name: None };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            let value: syn::LitStr = meta.value()?.parse()?;
            crate::names::validate(&value.value())
                .map_err(|why| syn::Error::new(value.span(), why))?;
            if options.name.is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            options.name = Some(value);
            Ok(())
        } else {
            let path = &meta.path;
            let unknown = quote!(#path).to_string().replace(' ', "");
            Err(meta.error(format!(
                "unknown `#[stage]` argument `{unknown}`, expected {ARGUMENTS}"
            )))
        }
    });
    if let Err(err) = parser.parse2(attr) {
        errors.extend(err);
    }
    options
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let options = parse_options(attr, &mut errors);
    let function: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let span = first_token_span(&item);
            errors.push(span, "`#[stage]` applies to functions only");
            let compile_errors = errors.to_compile_errors();
            return quote!(#compile_errors #item);
        }
    };
    if let Some(receiver) = function.sig.receiver() {
        errors.push_spanned(
            receiver,
            "`#[stage]` applies to free functions: a stage cannot take `self`; move it out of the `impl`, or use a closure in the pipeline",
        );
    }
    if let Some(name) = &options.name {
        check_nameable(&function, name, &mut errors);
    }
    if !errors.is_empty() {
        let compile_errors = errors.to_compile_errors();
        return quote!(#compile_errors #function);
    }
    match options.name {
        None => quote!(#function),
        Some(name) => named(function, &name),
    }
}

/// A named stage becomes a constant that dereferences to the function, so that it stays
/// callable (`parse(line)`) and carries its name into the pipeline.
fn named(function: syn::ItemFn, name: &syn::LitStr) -> TokenStream {
    let syn::ItemFn {
        attrs,
        vis,
        mut sig,
        block,
    } = function;
    let ident = sig.ident.clone();
    let inner = format_ident!("__dataflow_stage_{}", ident);
    sig.ident = inner.clone();
    let inputs = sig.inputs.iter().map(|arg| match arg {
        syn::FnArg::Typed(pat) => pat.ty.as_ref().clone(),
        syn::FnArg::Receiver(_) => unreachable!("refused in `expand`"),
    });
    let output = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let span = ident.span();
    quote_spanned! {span=>
        #[allow(non_upper_case_globals)]
        #(#attrs)*
        #vis const #ident: ::dataflow::Named<fn(#(#inputs),*) -> #output> =
            ::dataflow::Named::new(#name, #inner);

        #[doc(hidden)]
        #[allow(non_snake_case)]
        #vis #sig #block
    }
}

fn check_nameable(function: &syn::ItemFn, name: &syn::LitStr, errors: &mut Errors) {
    let sig = &function.sig;
    let why = if sig.asyncness.is_some() {
        Some("an `async fn`")
    } else if !sig.generics.params.is_empty() {
        Some("a generic function")
    } else if sig.receiver().is_some() {
        // Reported on its own in `expand`.
        None
    } else if sig.inputs.iter().any(|a| match a {
        syn::FnArg::Typed(t) => matches!(*t.ty, syn::Type::ImplTrait(_)),
        syn::FnArg::Receiver(_) => false,
    }) || matches!(&sig.output, syn::ReturnType::Type(_, t) if matches!(**t, syn::Type::ImplTrait(_)))
    {
        Some("a function with `impl Trait` in its signature")
    } else {
        None
    };
    if let Some(why) = why {
        errors.push(
            name.span(),
            format!(
                "`name` is not supported on {why}: the stage is named after the function instead"
            ),
        );
    }
}

fn first_token_span(item: &TokenStream) -> Span {
    item.clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_argument_is_reported_with_the_expected_ones() {
        let out = expand(
            quote!(paralell = 2),
            quote!(
                fn f(x: u32) -> u32 {
                    x
                }
            ),
        )
        .to_string();
        assert!(
            out.contains("unknown `#[stage]` argument `paralell`, expected `name`"),
            "{out}"
        );
        assert!(out.contains("fn f"), "the function is still emitted: {out}");
    }

    #[test]
    fn a_non_function_is_refused() {
        let out = expand(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(out.contains("applies to functions only"), "{out}");
    }

    #[test]
    fn a_method_is_refused_and_left_as_it_was() {
        let out = expand(
            quote!(),
            quote!(
                fn scale(&self, x: u32) -> u32 {
                    x * self.factor
                }
            ),
        )
        .to_string();
        assert!(out.contains("a stage cannot take `self`"), "{out}");
        assert!(out.contains("fn scale (& self"), "{out}");
    }

    #[test]
    fn a_named_stage_becomes_a_named_constant() {
        let out = expand(
            quote!(name = "parse_click"),
            quote!(
                fn parse(x: u32) -> u32 {
                    x
                }
            ),
        )
        .to_string();
        assert!(out.contains("const parse"), "{out}");
        assert!(out.contains("__dataflow_stage_parse"), "{out}");
        assert!(out.contains("\"parse_click\""), "{out}");
    }
}
