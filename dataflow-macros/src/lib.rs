//! Procedural macros of `dataflow`: `#[stage]` and `#[pipeline]`.
//!
//! A thin shell: each attribute parses its input into a model, checks it (collecting every
//! error, not only the first), and generates code, in the modules below. Use them through the
//! `dataflow` crate, which documents them.

use proc_macro::TokenStream;

mod errors;
mod names;
mod operators;
mod pipeline;
mod stage;
mod suggest;

/// (The attribute itself lives in the `dataflow-macros` crate.)
#[proc_macro_attribute]
pub fn stage(attr: TokenStream, item: TokenStream) -> TokenStream {
    stage::expand(attr.into(), item.into()).into()
}

/// (The attribute itself lives in the `dataflow-macros` crate.)
#[proc_macro_attribute]
pub fn pipeline(attr: TokenStream, item: TokenStream) -> TokenStream {
    pipeline::expand(attr.into(), item.into()).into()
}

/// `dataflow::NodeKind`, from the operator table of this crate (`operators.rs`), so that the
/// list of operators is written once. Used by `dataflow` only.
#[doc(hidden)]
#[proc_macro]
pub fn node_kind(input: TokenStream) -> TokenStream {
    let input = proc_macro2::TokenStream::from(input);
    if !input.is_empty() {
        return syn::Error::new_spanned(input, "`node_kind!` takes no input")
            .to_compile_error()
            .into();
    }
    operators::node_kind().into()
}
