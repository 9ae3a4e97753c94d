//! Procedural macros of `dataflow`: `#[stage]` and `#[pipeline]`.
//!
//! This crate is a placeholder at this stage of the project: the attributes are declared so
//! that the workspace is complete, and they leave the item they are put on unchanged. Their
//! real expansion (typed graph, structural checks, code generation) is tracked in the
//! pipeline issue.

use proc_macro::TokenStream;

/// Marks a function as a pipeline stage. For now it returns the function unchanged.
#[proc_macro_attribute]
pub fn stage(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Declares a pipeline. For now it returns the function unchanged.
#[proc_macro_attribute]
pub fn pipeline(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
