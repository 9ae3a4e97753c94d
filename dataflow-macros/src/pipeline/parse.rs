//! The pipeline function as a model: typed parameters, statements that are chains of
//! operator calls, and the values the wiring uses (`let threshold = 10;`, `const`, `fn`).
//!
//! A `let` binds a stream when its value is a chain: it starts at a source, at a stream bound
//! earlier or later (a later one is a cycle, reported by `build`), or calls an operator on a
//! name. Any other `let` binds a value, computed once when the pipeline starts.

use proc_macro2::Span;
use syn::spanned::Spanned;

use crate::errors::Errors;
use crate::operators::Kind;

/// A `Source<T>` or `Sink<T>` parameter.
pub(crate) struct Param {
    pub(crate) name: syn::Ident,
    pub(crate) kind: ParamKind,
    /// The `T`.
    pub(crate) ty: syn::Type,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    Source,
    Sink,
}

/// `.method(args)` in a chain.
pub(crate) struct Call {
    pub(crate) method: syn::Ident,
    /// The arguments, without `name = "..."`.
    pub(crate) args: Vec<syn::Expr>,
    /// `name = "..."`: the name of the node in metrics and graphs.
    pub(crate) name: Option<syn::LitStr>,
    /// The whole `.method(args)`, for errors.
    pub(crate) span: Span,
}

/// `root.call().call()...`
pub(crate) struct Chain {
    pub(crate) root: syn::Ident,
    pub(crate) calls: Vec<Call>,
    pub(crate) span: Span,
}

/// What a statement binds its chain's output to.
pub(crate) enum Binding {
    /// `chain;`: nothing.
    None,
    /// `let name = chain;` (`None` for `_`).
    One(Option<syn::Ident>),
    /// `let (a, b) = chain;` (`None` for `_`).
    Two(Option<syn::Ident>, Option<syn::Ident>),
}

impl Binding {
    /// The names it binds (not `_`).
    pub(crate) fn names(&self) -> Vec<&syn::Ident> {
        match self {
            Binding::None | Binding::One(None) => vec![],
            Binding::One(Some(a)) => vec![a],
            Binding::Two(a, b) => a.iter().chain(b.iter()).collect(),
        }
    }
}

pub(crate) struct Statement {
    pub(crate) binding: Binding,
    pub(crate) chain: Chain,
}

/// A statement of the body that is not wiring: a `let` of a value, or an item.
pub(crate) struct Value {
    pub(crate) stmt: syn::Stmt,
    /// The names it binds.
    pub(crate) names: Vec<syn::Ident>,
    /// A `let` (its values are cloned into tasks), not an item (which tasks name directly).
    pub(crate) is_let: bool,
}

pub(crate) struct Model {
    pub(crate) function: syn::ItemFn,
    pub(crate) params: Vec<Param>,
    pub(crate) statements: Vec<Statement>,
    pub(crate) values: Vec<Value>,
}

impl Model {
    /// Whether `name` is bound by a value statement.
    pub(crate) fn is_value(&self, name: &syn::Ident) -> bool {
        self.values.iter().any(|v| v.names.contains(name))
    }

    /// Whether `name` is bound by a `let` value statement.
    pub(crate) fn is_let_value(&self, name: &syn::Ident) -> bool {
        self.values
            .iter()
            .any(|v| v.is_let && v.names.contains(name))
    }
}

pub(crate) fn parse(function: syn::ItemFn, errors: &mut Errors) -> Model {
    let params = function
        .sig
        .inputs
        .iter()
        .filter_map(|input| parse_param(input, errors))
        .collect();
    if let Some(asyncness) = &function.sig.asyncness {
        errors.push_spanned(
            asyncness,
            "a pipeline function is not `async`: it only wires stages",
        );
    }
    if !function.sig.generics.params.is_empty() {
        errors.push_spanned(
            &function.sig.generics,
            "a pipeline function cannot be generic",
        );
    }
    if let syn::ReturnType::Type(_, ty) = &function.sig.output {
        errors.push_spanned(
            ty,
            "a pipeline function returns nothing: end every stream with `.to(sink)`",
        );
    }
    let streams = stream_names(&function);
    let is_stream = |root: &syn::Ident, first_call: Option<&syn::Ident>| {
        function
            .sig
            .inputs
            .iter()
            .any(|input| matches!(input, syn::FnArg::Typed(t) if matches!(&*t.pat, syn::Pat::Ident(p) if p.ident == *root)))
            || streams.contains(root)
            || first_call.is_some_and(|m| Kind::from_method(&m.to_string()).is_some())
    };
    let mut statements = Vec::new();
    let mut values = Vec::new();
    for stmt in &function.block.stmts {
        match classify(stmt, is_stream) {
            Class::Stream => {
                if let Some(statement) = parse_statement(stmt, errors) {
                    statements.push(statement);
                }
            }
            Class::Value(names) => values.push(Value {
                stmt: stmt.clone(),
                names,
                is_let: matches!(stmt, syn::Stmt::Local(_)),
            }),
            Class::Invalid => errors.push_spanned(stmt, STATEMENT),
        }
    }
    Model {
        function,
        params,
        statements,
        values,
    }
}

enum Class {
    Stream,
    Value(Vec<syn::Ident>),
    Invalid,
}

/// What a statement of the body is.
fn classify(
    stmt: &syn::Stmt,
    is_stream: impl Fn(&syn::Ident, Option<&syn::Ident>) -> bool,
) -> Class {
    match stmt {
        syn::Stmt::Local(local) => {
            match local.init.as_ref().and_then(|init| chain_root(&init.expr)) {
                Some((root, first)) if is_stream(root, first) => Class::Stream,
                // `let x;` is wiring gone wrong, reported as such.
                _ if local.init.is_none() => Class::Stream,
                _ => Class::Value(pattern_names(&local.pat)),
            }
        }
        syn::Stmt::Item(item) => Class::Value(item_name(item).into_iter().collect()),
        syn::Stmt::Expr(..) => Class::Stream,
        syn::Stmt::Macro(_) => Class::Invalid,
    }
}

/// Names bound by a `let` whose value is chain-like: those may be streams.
fn stream_names(function: &syn::ItemFn) -> Vec<syn::Ident> {
    function
        .block
        .stmts
        .iter()
        .filter_map(|stmt| match stmt {
            syn::Stmt::Local(local) => local
                .init
                .as_ref()
                .and_then(|init| chain_root(&init.expr))
                .map(|_| pattern_names(&local.pat)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The root name of `name.call().call()`, and the first call: `None` if `expr` is no chain.
fn chain_root(expr: &syn::Expr) -> Option<(&syn::Ident, Option<&syn::Ident>)> {
    let mut first = None;
    let mut current = expr;
    loop {
        match current {
            syn::Expr::MethodCall(call) => {
                first = Some(&call.method);
                current = &call.receiver;
            }
            syn::Expr::Paren(paren) => current = &paren.expr,
            syn::Expr::Path(path) if path.qself.is_none() => {
                return path.path.get_ident().map(|root| (root, first));
            }
            _ => return None,
        }
    }
}

/// The names a pattern binds.
fn pattern_names(pat: &syn::Pat) -> Vec<syn::Ident> {
    match pat {
        syn::Pat::Ident(ident) => std::iter::once(ident.ident.clone())
            .chain(ident.subpat.iter().flat_map(|(_, p)| pattern_names(p)))
            .collect(),
        syn::Pat::Tuple(tuple) => tuple.elems.iter().flat_map(pattern_names).collect(),
        syn::Pat::TupleStruct(tuple) => tuple.elems.iter().flat_map(pattern_names).collect(),
        syn::Pat::Struct(s) => s
            .fields
            .iter()
            .flat_map(|f| pattern_names(&f.pat))
            .collect(),
        syn::Pat::Slice(slice) => slice.elems.iter().flat_map(pattern_names).collect(),
        syn::Pat::Reference(r) => pattern_names(&r.pat),
        syn::Pat::Type(t) => pattern_names(&t.pat),
        syn::Pat::Paren(p) => pattern_names(&p.pat),
        _ => Vec::new(),
    }
}

/// The value-namespace name an item defines, if any.
fn item_name(item: &syn::Item) -> Option<syn::Ident> {
    match item {
        syn::Item::Const(c) => Some(c.ident.clone()),
        syn::Item::Static(s) => Some(s.ident.clone()),
        syn::Item::Fn(f) => Some(f.sig.ident.clone()),
        _ => None,
    }
}

fn parse_param(input: &syn::FnArg, errors: &mut Errors) -> Option<Param> {
    const EXPECTED: &str = "pipeline parameters are `name: Source<T>` or `name: Sink<T>`";
    let syn::FnArg::Typed(typed) = input else {
        errors.push_spanned(input, EXPECTED);
        return None;
    };
    let syn::Pat::Ident(pat) = &*typed.pat else {
        errors.push_spanned(&typed.pat, EXPECTED);
        return None;
    };
    let syn::Type::Path(path) = &*typed.ty else {
        errors.push_spanned(&typed.ty, EXPECTED);
        return None;
    };
    let last = path.path.segments.last()?;
    let kind = match last.ident.to_string().as_str() {
        "Source" => ParamKind::Source,
        "Sink" => ParamKind::Sink,
        _ => {
            errors.push_spanned(&typed.ty, EXPECTED);
            return None;
        }
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        errors.push_spanned(
            &typed.ty,
            format!("`{}` needs its value type: `{}<T>`", last.ident, last.ident),
        );
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    });
    let (Some(ty), None) = (types.next(), types.next()) else {
        errors.push_spanned(
            args,
            format!("`{}` takes one type: `{}<T>`", last.ident, last.ident),
        );
        return None;
    };
    Some(Param {
        name: pat.ident.clone(),
        kind,
        ty,
    })
}

/// Splits `name = "..."` off the arguments of `.method(..)`.
fn name_argument(
    method: &syn::Ident,
    args: &syn::punctuated::Punctuated<syn::Expr, syn::Token![,]>,
    errors: &mut Errors,
) -> (Option<syn::LitStr>, Vec<syn::Expr>) {
    let mut name: Option<syn::LitStr> = None;
    let mut rest = Vec::new();
    for arg in args {
        let syn::Expr::Assign(assign) = arg else {
            rest.push(arg.clone());
            continue;
        };
        if !matches!(&*assign.left, syn::Expr::Path(p) if p.path.is_ident("name")) {
            rest.push(arg.clone());
            continue;
        }
        match &*assign.right {
            _ if method == "to" => errors.push_spanned(
                arg,
                "a sink is named after its parameter: `to` takes no `name`",
            ),
            _ if name.is_some() => errors.push_spanned(arg, "`name` is given twice"),
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) => match crate::names::validate(&lit.value()) {
                Ok(()) => name = Some(lit.clone()),
                Err(why) => errors.push_spanned(lit, why),
            },
            other => {
                errors.push_spanned(other, "`name` takes a string literal: `name = \"parse\"`")
            }
        }
    }
    (name, rest)
}

const STATEMENT: &str = "a pipeline is made of stream chains (`source.map(stage).to(sink);`, `let name = source.map(stage);`) and the values they use (`let limit = 10;`, `const LIMIT: u32 = 10;`)";

fn parse_statement(stmt: &syn::Stmt, errors: &mut Errors) -> Option<Statement> {
    match stmt {
        syn::Stmt::Local(local) => {
            let Some(init) = &local.init else {
                errors.push_spanned(local, STATEMENT);
                return None;
            };
            if let Some((_, diverge)) = &init.diverge {
                errors.push_spanned(diverge, "`let ... else` is not supported in a pipeline");
            }
            let binding = match &local.pat {
                syn::Pat::Ident(ident) => Binding::One(Some(ident.ident.clone())),
                syn::Pat::Wild(_) => Binding::One(None),
                syn::Pat::Tuple(tuple) if tuple.elems.len() == 2 => {
                    let name = |pat: &syn::Pat| match pat {
                        syn::Pat::Ident(ident) => Ok(Some(ident.ident.clone())),
                        syn::Pat::Wild(_) => Ok(None),
                        other => Err(other.span()),
                    };
                    match (name(&tuple.elems[0]), name(&tuple.elems[1])) {
                        (Ok(a), Ok(b)) => Binding::Two(a, b),
                        (Err(span), _) | (_, Err(span)) => {
                            errors.push(span, "bind each branch to a name, or to `_` to drop it");
                            return None;
                        }
                    }
                }
                other => {
                    errors.push_spanned(other, "bind a stream to a name (`let s = ...`) or two branches to a pair (`let (a, b) = ...`)");
                    return None;
                }
            };
            let chain = parse_chain(&init.expr, errors)?;
            Some(Statement { binding, chain })
        }
        syn::Stmt::Expr(expr, _) => {
            let chain = parse_chain(expr, errors)?;
            Some(Statement {
                binding: Binding::None,
                chain,
            })
        }
        other => {
            errors.push_spanned(other, STATEMENT);
            None
        }
    }
}

fn parse_chain(expr: &syn::Expr, errors: &mut Errors) -> Option<Chain> {
    let mut calls = Vec::new();
    let mut current = expr;
    loop {
        match current {
            syn::Expr::MethodCall(call) => {
                if let Some(turbofish) = &call.turbofish {
                    errors.push_spanned(
                        turbofish,
                        "operators take no type arguments: the types come from the stages",
                    );
                }
                let span = call
                    .method
                    .span()
                    .join(call.paren_token.span.close())
                    .unwrap_or_else(|| call.method.span());
                let (name, args) = name_argument(&call.method, &call.args, errors);
                calls.push(Call {
                    method: call.method.clone(),
                    args,
                    name,
                    span,
                });
                current = &call.receiver;
            }
            syn::Expr::Path(path) if path.path.get_ident().is_some() && path.qself.is_none() => {
                calls.reverse();
                return Some(Chain {
                    root: path.path.get_ident().cloned().expect("checked"),
                    calls,
                    span: expr.span(),
                });
            }
            syn::Expr::Paren(paren) => current = &paren.expr,
            other => {
                errors.push_spanned(
                    other,
                    "a stream chain starts at a source or at a stream bound with `let`",
                );
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn model(function: syn::ItemFn) -> (Model, Vec<String>) {
        let mut errors = Errors::new();
        let model = parse(function, &mut errors);
        (model, errors.messages())
    }

    #[test]
    fn lets_of_chains_are_streams_and_other_lets_are_values() {
        let (model, errors) = model(parse_quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                const LIMIT: u32 = 10;
                let threshold = "5".parse::<u32>().unwrap();
                let by_parity = |x: &u32| x % 2;
                let small = input.filter(|x| *x < LIMIT);
                let (even, odd) = small.split(|x| *x % 2 == 0);
                let copy = odd;
                even.merge(copy).to(out);
            }
        });
        assert!(errors.is_empty(), "{errors:?}");
        let values: Vec<String> = model
            .values
            .iter()
            .flat_map(|v| v.names.iter().map(ToString::to_string))
            .collect();
        assert_eq!(values, ["LIMIT", "threshold", "by_parity"]);
        assert!(!model.values[0].is_let && model.values[1].is_let);
        assert_eq!(model.statements.len(), 4);
    }

    #[test]
    fn a_chain_on_an_unknown_name_that_calls_an_operator_is_a_stream() {
        let (model, _) = model(parse_quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                let s = inptu.map(inc);
                s.to(out);
            }
        });
        assert_eq!(
            model.statements.len(),
            2,
            "reported as an unknown stream later"
        );
        assert!(model.values.is_empty());
    }

    #[test]
    fn name_arguments_are_split_off_and_checked() {
        let (model, errors) = model(parse_quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                input.map(|x| x + 1, name = "plus_one").map(inc, name = 3).to(out);
            }
        });
        let calls = &model.statements[0].chain.calls;
        assert_eq!(
            calls[0].name.as_ref().map(syn::LitStr::value).as_deref(),
            Some("plus_one")
        );
        assert_eq!(calls[0].args.len(), 1);
        assert_eq!(
            errors,
            ["`name` takes a string literal: `name = \"parse\"`"]
        );
    }

    #[test]
    fn a_macro_statement_is_refused() {
        let (_, errors) = model(parse_quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                println!("wiring");
                input.to(out);
            }
        });
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("a pipeline is made of stream chains"));
    }
}
