//! Small helpers for generated tokens: spans, names.

use proc_macro2::{Ident, TokenStream};
use quote::format_ident;

pub(crate) fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
}

/// `tokens` with every span set to `span`, so that rustc reports anything wrong in them at
/// the user's stage (or `.to(..)`), not at the `#[pipeline]` attribute. Names keep resolving
/// as before: both spans have the call site's hygiene.
pub(crate) fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

pub(crate) fn var(prefix: &str, index: usize) -> Ident {
    format_ident!("__df_{}{}", prefix, index)
}
