//! Where the stages and the body's values live at run time.
//!
//! A stage written as a path (a function, a `#[stage(name = "...")]` constant, or a closure
//! bound to a value of the body) is bound once in `start`, where its `#[stage]` name is read,
//! and each task gets a clone. Because the name and the tasks use the same binding, a generic
//! function's type parameters are inferred from the stream it is used on, as `Iterator::map`
//! does. A closure written in place is called in place. Any other expression is evaluated
//! once per task.
//!
//! The values of the body (`let threshold = 10;`) are computed once in `start`, and each task
//! gets clones of those its segment mentions.

use std::collections::BTreeSet;

use proc_macro2::{Ident, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::operators::Kind;
use crate::pipeline::codegen::tokens::{respan, var};
use crate::pipeline::graph::{Graph, Node};
use crate::pipeline::parse::Model;

/// How a node's stage reaches its task.
pub(crate) enum StageAt {
    /// Bound in `start` as `__df_stage{node}`, cloned per task into `__df_s{node}`.
    Start,
    /// Evaluated per task into `__df_s{node}`.
    Task,
    /// A closure, called where it is written.
    InPlace,
}

pub(crate) fn stage_at(node: &Node) -> Option<StageAt> {
    match node.stage.as_ref()? {
        syn::Expr::Path(_) => Some(StageAt::Start),
        syn::Expr::Closure(_) => Some(StageAt::InPlace),
        _ => Some(StageAt::Task),
    }
}

/// The `let`s of `start` that bind path stages and read their names.
pub(crate) fn start_bindings(model: &Model, graph: &Graph) -> TokenStream {
    graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| matches!(stage_at(node), Some(StageAt::Start)))
        .map(|(index, node)| {
            let stage = node.stage.as_ref().expect("checked");
            let span = stage.span();
            // A value of the body may be used twice: each use gets a clone.
            let arg = match stage {
                syn::Expr::Path(p) if p.path.get_ident().is_some_and(|i| model.is_value(i)) => {
                    quote_spanned!(span=> ::core::clone::Clone::clone(&#stage))
                }
                _ => quote!(#stage),
            };
            let name = var("name", index);
            let binding = var("stage", index);
            let default = &node.name;
            quote_spanned! {span=>
                let (#name, #binding) = {
                    #[allow(unused_imports)]
                    use ::dataflow::__private::{NameNamed as _, NamePlain as _, UnwrapNamed as _, UnwrapPlain as _};
                    let __df_arg = ::dataflow::__private::StageArg::new(#arg);
                    ((&__df_arg).__dataflow_name(#default), (&__df_arg).__dataflow_unwrap())
                };
            }
        })
        .collect()
}

/// `[(node, name), ...]` for the stages bound in `start`, for `__private::renamed`.
pub(crate) fn names(graph: &Graph) -> TokenStream {
    let pairs = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| matches!(stage_at(node), Some(StageAt::Start)))
        .map(|(index, _)| {
            let name = var("name", index);
            quote!((#index, #name))
        });
    quote!(&[#(#pairs),*])
}

/// What a segment's task closure needs, in three places: before the closure (clones it
/// captures), in the closure (clones for one task) and in the task (stages made per task,
/// aggregate states restored from the last checkpoint).
pub(crate) struct Captures {
    pub(crate) outer: Vec<TokenStream>,
    pub(crate) per_task: Vec<TokenStream>,
    pub(crate) preludes: Vec<TokenStream>,
    /// The keyed states of the segment's aggregates, as `&mut dyn Snapshot`s for the
    /// checkpoints that `commit_with` and `end_with` take.
    pub(crate) states: Vec<TokenStream>,
}

pub(crate) fn captures(model: &Model, graph: &Graph, segment: usize) -> Captures {
    let mut captures = Captures {
        outer: Vec::new(),
        per_task: Vec::new(),
        preludes: Vec::new(),
        states: Vec::new(),
    };
    let mut mentioned = BTreeSet::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        if node.segment != segment || matches!(node.kind, Kind::Source | Kind::Sink | Kind::Merge) {
            continue;
        }
        // A stage bound in `start` is cloned from its binding, not from the values.
        let in_task = match stage_at(node) {
            Some(StageAt::Start) | None => None,
            Some(StageAt::Task | StageAt::InPlace) => node.stage.as_ref(),
        };
        for expr in [in_task, node.init.as_ref(), node.limit.as_ref()]
            .into_iter()
            .flatten()
        {
            mentioned.extend(values_in(model, expr));
        }
        let stage = var("s", index);
        match stage_at(node) {
            Some(StageAt::Start) => {
                let binding = var("stage", index);
                let span = node.stage_span();
                captures
                    .outer
                    .push(quote!(let #binding = ::core::clone::Clone::clone(&#binding);));
                captures.per_task.push(
                    quote_spanned!(span=> let mut #stage = ::core::clone::Clone::clone(&#binding);),
                );
            }
            Some(StageAt::Task) => {
                let expr = node.stage.as_ref().expect("checked");
                let span = expr.span();
                captures.preludes.push(quote_spanned! {span=>
                    let mut #stage = {
                        #[allow(unused_imports)]
                        use ::dataflow::__private::{UnwrapNamed as _, UnwrapPlain as _};
                        (&::dataflow::__private::StageArg::new(#expr)).__dataflow_unwrap()
                    };
                });
            }
            Some(StageAt::InPlace) | None => {}
        }
        if node.kind.needs_key() {
            // Restored from the checkpoint the pipeline starts from; spanned at the
            // aggregate, where a state that checkpoints cannot copy is reported.
            // (`fold`'s state is its initial value's type: reported at that value.)
            let state = var("st", index);
            let span = node.init.as_ref().map_or(node.span, Spanned::span);
            let restore = respan(
                quote!(::dataflow::topics::keyed_state(&__df_task, #index)),
                span,
            );
            captures.preludes.push(quote!(let mut #state = #restore?;));
            captures.states.push(respan(
                quote!(::dataflow::topics::snapshot(&mut #state)),
                span,
            ));
        }
        if let Some(init) = &node.init {
            let v = var("init", index);
            captures.preludes.push(quote!(let #v = #init;));
        }
    }
    for value in mentioned {
        // Spanned at the value: one that cannot be cloned or sent to a task is reported at
        // its `let`.
        let clone = respan(
            quote!(let #value = ::core::clone::Clone::clone(&#value);),
            value.span(),
        );
        captures.outer.push(clone.clone());
        captures.per_task.push(clone);
    }
    captures
}

/// The `let` values of the body that `expr` mentions (a closure parameter of the same name
/// counts too: cloning a value it shadows is harmless).
fn values_in(model: &Model, expr: &syn::Expr) -> BTreeSet<Ident> {
    struct Idents<'m> {
        model: &'m Model,
        found: BTreeSet<Ident>,
    }
    impl<'ast> Visit<'ast> for Idents<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if let Some(ident) = path.get_ident()
                && self.model.is_let_value(ident)
            {
                self.found.insert(ident.clone());
            }
            syn::visit::visit_path(self, path);
        }
        fn visit_macro(&mut self, mac: &'ast syn::Macro) {
            // Macro arguments are tokens: look for the names there too (`format!("{x}")` is
            // missed, as rustc's own capture analysis would need expansion to see it).
            for tree in mac.tokens.clone() {
                if let proc_macro2::TokenTree::Ident(ident) = tree
                    && self.model.is_let_value(&ident)
                {
                    self.found.insert(ident);
                }
            }
        }
    }
    let mut idents = Idents {
        model,
        found: BTreeSet::new(),
    };
    idents.visit_expr(expr);
    idents.found
}
