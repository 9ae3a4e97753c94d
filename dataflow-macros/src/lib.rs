//! Procedural macros of `dataflow`: `#[stage]` and `#[pipeline]`.
//!
//! A thin shell: each attribute parses its input into a model, checks it (collecting every
//! error, not only the first), and generates code, in the modules below. Use them through the
//! `dataflow` crate, which documents them.

use proc_macro::TokenStream;

mod errors;
mod pipeline;
mod stage;

/// Marks a function as a pipeline stage. See `dataflow::stage`.
#[proc_macro_attribute]
pub fn stage(attr: TokenStream, item: TokenStream) -> TokenStream {
    stage::expand(attr.into(), item.into()).into()
}

/// Declares a pipeline. See `dataflow::pipeline`.
#[proc_macro_attribute]
pub fn pipeline(attr: TokenStream, item: TokenStream) -> TokenStream {
    pipeline::expand(attr.into(), item.into()).into()
}
