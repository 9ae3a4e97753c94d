//! The pipeline function as a model: typed parameters, and statements that are chains of
//! operator calls.

use proc_macro2::Span;
use syn::spanned::Spanned;

use crate::errors::Errors;

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
    pub(crate) args: Vec<syn::Expr>,
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

pub(crate) struct Model {
    pub(crate) function: syn::ItemFn,
    pub(crate) params: Vec<Param>,
    pub(crate) statements: Vec<Statement>,
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
    let statements = function
        .block
        .stmts
        .iter()
        .filter_map(|stmt| parse_statement(stmt, errors))
        .collect();
    Model {
        function,
        params,
        statements,
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

const STATEMENT: &str = "a pipeline is made of stream chains: `source.map(stage).to(sink);` or `let name = source.map(stage);`";

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
                calls.push(Call {
                    method: call.method.clone(),
                    args: call.args.iter().cloned().collect(),
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
