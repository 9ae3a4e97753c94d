//! The operators of a pipeline: the one list every other part is derived from.
//!
//! The macro's `Kind`, the method names it accepts, their arities, and the runtime's
//! `dataflow::NodeKind` (expanded by the hidden `node_kind!` macro, see [`node_kind`]) all
//! come from the table at the bottom of this file. Adding an operator is one line here, one
//! arm in the graph builder where it changes the stream's shape, and one in code generation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// How many arguments an operator takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Arity {
    Exactly(usize),
    AtLeast(usize),
    Range(usize, usize),
}

impl Arity {
    pub(crate) fn accepts(self, given: usize) -> bool {
        match self {
            Arity::Exactly(n) => given == n,
            Arity::AtLeast(n) => given >= n,
            Arity::Range(min, max) => (min..=max).contains(&given),
        }
    }
}

macro_rules! operators {
    ($(
        $(#[doc = $doc:literal])+
        $variant:ident = $method:literal, arity $arity:expr, takes $takes:literal;
    )*) => {
        /// What a node of the graph does.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub(crate) enum Kind {
            $($variant,)*
        }

        impl Kind {
            /// Every kind, in table order.
            pub(crate) const ALL: &[Kind] = &[$(Kind::$variant,)*];

            /// The name written in a pipeline (`source` for sources, which are parameters).
            pub(crate) fn method(self) -> &'static str {
                match self {
                    $(Kind::$variant => $method,)*
                }
            }

            /// The variant's name, shared with `dataflow::NodeKind`.
            pub(crate) fn variant(self) -> &'static str {
                match self {
                    $(Kind::$variant => stringify!($variant),)*
                }
            }

            /// The arguments it takes, `None` for sources (never called as a method).
            pub(crate) fn arity(self) -> Option<Arity> {
                match self {
                    $(Kind::$variant => $arity,)*
                }
            }

            /// What its arguments are, for "`fold` takes ..., 1 given".
            pub(crate) fn takes(self) -> &'static str {
                match self {
                    $(Kind::$variant => $takes,)*
                }
            }

            /// Its documentation, for `dataflow::NodeKind`.
            pub(crate) fn doc(self) -> &'static str {
                match self {
                    $(Kind::$variant => concat!($($doc, "\n"),+),)*
                }
            }
        }
    };
}

use Arity::{AtLeast, Exactly, Range};

operators! {
    /// Reads a topic bound to a source parameter.
    Source = "source", arity None, takes "";
    /// `map(stage)`: `fn(T) -> U`; a `Result` output sends `Err` to the dead letters.
    Map = "map", arity Some(Exactly(1)), takes "1 argument: a stage";
    /// `map_async(stage, limit)`: an async stage, outputs in input order.
    MapAsync = "map_async", arity Some(Range(1, 2)),
        takes "an async stage, and optionally how many records it may have in flight";
    /// `map_async_unordered(stage, limit)`: an async stage, outputs as they complete.
    MapAsyncUnordered = "map_async_unordered", arity Some(Range(1, 2)),
        takes "an async stage, and optionally how many records it may have in flight";
    /// `filter(stage)`: `fn(&T) -> bool`.
    Filter = "filter", arity Some(Exactly(1)), takes "1 argument: a stage";
    /// `filter_map(stage)`: `fn(T) -> Option<U>`.
    FilterMap = "filter_map", arity Some(Exactly(1)), takes "1 argument: a stage";
    /// `flat_map(stage)`: `fn(T) -> impl IntoIterator<Item = U>`.
    FlatMap = "flat_map", arity Some(Exactly(1)), takes "1 argument: a stage";
    /// `inspect(stage)`: `fn(&T)`.
    Inspect = "inspect", arity Some(Exactly(1)), takes "1 argument: a stage";
    /// `key_by(stage)`: `fn(&T) -> K`; repartitions by key into `(K, T)` pairs.
    KeyBy = "key_by", arity Some(Exactly(1)), takes "1 argument: a stage";
    /// `merge(streams...)`: fan-in of several streams.
    Merge = "merge", arity Some(AtLeast(1)), takes "the streams to merge with, at least one";
    /// `split(stage)`: `fn(&T) -> bool`; two branches, `true` first.
    Split = "split", arity Some(Exactly(1)), takes "1 argument: a stage";
    /// `split_result(stage)`: `fn(T) -> Result<U, E>`; two branches, `Ok` first.
    SplitResult = "split_result", arity Some(Exactly(1)), takes "1 argument: a stage";
    /// `count()`: a running count per key, `(K, u64)`.
    Count = "count", arity Some(Exactly(0)), takes "no argument";
    /// `fold(init, stage)`: `fn(S, V) -> S`; a running fold per key, `(K, S)`.
    Fold = "fold", arity Some(Exactly(2)),
        takes "2 arguments: the initial state and a stage `fn(S, V) -> S`";
    /// `reduce(stage)`: `fn(V, V) -> V`; a running reduce per key, `(K, V)`.
    Reduce = "reduce", arity Some(Exactly(1)), takes "1 argument: a stage `fn(V, V) -> V`";
    /// `to(sink)`: writes to a topic bound to a sink parameter.
    Sink = "to", arity Some(Exactly(1)), takes "1 argument: a sink parameter";
}

impl Kind {
    /// The operator called `.method(..)` in a pipeline.
    pub(crate) fn from_method(method: &str) -> Option<Kind> {
        Kind::ALL
            .iter()
            .copied()
            .find(|kind| kind.arity().is_some() && kind.method() == method)
    }

    /// Every method a pipeline can call, in table order.
    pub(crate) fn methods() -> impl Iterator<Item = &'static str> {
        Kind::ALL
            .iter()
            .filter(|kind| kind.arity().is_some())
            .map(|kind| kind.method())
    }

    /// Aggregates that keep state per key and need a keyed stream.
    pub(crate) fn needs_key(self) -> bool {
        matches!(self, Kind::Count | Kind::Fold | Kind::Reduce)
    }

    /// Operators whose input is an internal topic: they start a segment.
    pub(crate) fn starts_segment(self) -> bool {
        matches!(self, Kind::Merge | Kind::MapAsync | Kind::MapAsyncUnordered)
    }

    /// Async stages.
    pub(crate) fn is_async(self) -> bool {
        matches!(self, Kind::MapAsync | Kind::MapAsyncUnordered)
    }
}

/// `dataflow::NodeKind` and its `operator()` and `ALL`, from the table.
pub(crate) fn node_kind() -> TokenStream {
    let variants: Vec<_> = Kind::ALL
        .iter()
        .map(|kind| format_ident!("{}", kind.variant()))
        .collect();
    let docs = Kind::ALL
        .iter()
        .map(|kind| kind.doc().trim_end().to_owned());
    let methods = Kind::ALL.iter().map(|kind| kind.method());
    quote! {
        /// What a node does: one variant per operator of `#[pipeline]`, plus sources.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum NodeKind {
            #(#[doc = #docs] #variants,)*
        }

        impl NodeKind {
            /// Every kind, in the order of the operator table.
            pub const ALL: &'static [NodeKind] = &[#(NodeKind::#variants,)*];

            /// The operator's name as written in a pipeline (`source` for sources, `to` for
            /// sinks).
            pub fn operator(self) -> &'static str {
                match self {
                    #(NodeKind::#variants => #methods,)*
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_resolve_to_their_kind_and_sources_are_not_methods() {
        assert_eq!(Kind::from_method("map"), Some(Kind::Map));
        assert_eq!(Kind::from_method("to"), Some(Kind::Sink));
        assert_eq!(Kind::from_method("source"), None);
        assert_eq!(Kind::methods().count(), Kind::ALL.len() - 1);
    }

    #[test]
    fn arities_accept_what_they_say() {
        assert!(Kind::Count.arity().unwrap().accepts(0));
        assert!(!Kind::Count.arity().unwrap().accepts(1));
        assert!(Kind::MapAsync.arity().unwrap().accepts(2));
        assert!(!Kind::MapAsync.arity().unwrap().accepts(3));
        assert!(Kind::Merge.arity().unwrap().accepts(5));
        assert!(!Kind::Merge.arity().unwrap().accepts(0));
    }

    #[test]
    fn node_kind_has_one_variant_and_one_operator_arm_per_kind() {
        let out = node_kind().to_string();
        for kind in Kind::ALL {
            let arm = format!("NodeKind :: {} => \"{}\"", kind.variant(), kind.method());
            assert!(out.contains(&arm), "missing `{arm}` in {out}");
        }
    }
}
