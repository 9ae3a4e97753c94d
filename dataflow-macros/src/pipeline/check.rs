//! The structural rules of a pipeline: each call names a known operator with the right
//! arguments for its input, and at the end every stream is consumed and every parameter used.
//! Types are left to rustc (see `codegen`).

use crate::errors::Errors;
use crate::operators::Kind;
use crate::pipeline::build::Builder;
use crate::pipeline::parse::{Call, ParamKind};
use crate::suggest::closest;

/// The operator `call` names, if it exists and fits a stream that is keyed or not.
pub(crate) fn call(call: &Call, input_keyed: bool, errors: &mut Errors) -> Option<Kind> {
    let method = call.method.to_string();
    let Some(kind) = Kind::from_method(&method) else {
        let hint = closest(&method, Kind::methods())
            .map(|k| format!("did you mean `{k}`? "))
            .unwrap_or_default();
        let all: Vec<String> = Kind::methods().map(|m| format!("`{m}`")).collect();
        errors.push(
            call.method.span(),
            format!(
                "unknown operator `{method}`: {hint}expected one of {}",
                all.join(", ")
            ),
        );
        return None;
    };
    let given = call.args.len();
    if !kind.arity().is_some_and(|arity| arity.accepts(given)) {
        errors.push(
            call.span,
            format!("`{method}` takes {}, {given} given", kind.takes()),
        );
        return None;
    }
    if kind.needs_key() && !input_keyed {
        errors.push(
            call.span,
            format!("`{method}` needs a keyed stream: call `.key_by(..)` before it"),
        );
        return None;
    }
    Some(kind)
}

/// The rules over the whole pipeline, once every statement is built.
pub(crate) fn finish(builder: &Builder<'_>, errors: &mut Errors) {
    let mut unused: Vec<_> = builder
        .streams
        .iter()
        .filter(|(_, s)| s.uses == 0)
        .collect();
    unused.sort_by_key(|(name, _)| name.as_str());
    for (name, stream) in unused {
        errors.push(
            stream.span,
            format!("stream `{name}` is never consumed: use it, end it with `.to(sink)`, or bind it to `_`"),
        );
    }
    for (param, used) in builder.model.params.iter().zip(&builder.param_used) {
        if !used {
            let message = match param.kind {
                ParamKind::Source => format!("source `{}` is never read", param.name),
                ParamKind::Sink => format!(
                    "sink `{}` is never written: send a stream to it with `.to({})`",
                    param.name, param.name
                ),
            };
            errors.push(param.name.span(), message);
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn check(expr: syn::ExprMethodCall, keyed: bool) -> (Option<Kind>, Vec<String>) {
        let call = Call {
            method: expr.method,
            args: expr.args.into_iter().collect(),
            name: None,
            span: proc_macro2::Span::call_site(),
        };
        let mut errors = Errors::new();
        let kind = super::call(&call, keyed, &mut errors);
        (kind, errors.messages())
    }

    #[test]
    fn a_known_operator_with_its_arguments_passes() {
        assert_eq!(
            check(parse_quote!(s.fold(0, add)), true),
            (Some(Kind::Fold), vec![])
        );
        assert_eq!(
            check(parse_quote!(s.map_async(f, 4)), false).0,
            Some(Kind::MapAsync)
        );
    }

    #[test]
    fn arity_errors_say_what_the_operator_takes() {
        let (kind, errors) = check(parse_quote!(s.fold(add)), true);
        assert_eq!(kind, None);
        assert_eq!(
            errors,
            ["`fold` takes 2 arguments: the initial state and a stage `fn(S, V) -> S`, 1 given"]
        );
    }

    #[test]
    fn aggregates_need_a_keyed_stream() {
        let (kind, errors) = check(parse_quote!(s.count()), false);
        assert_eq!(kind, None);
        assert_eq!(
            errors,
            ["`count` needs a keyed stream: call `.key_by(..)` before it"]
        );
    }

    #[test]
    fn an_unknown_operator_lists_every_operator() {
        let (_, errors) = check(parse_quote!(s.flatmap(f)), false);
        assert!(errors[0].starts_with("unknown operator `flatmap`: did you mean `flat_map`?"));
        for method in Kind::methods() {
            assert!(errors[0].contains(&format!("`{method}`")), "{method}");
        }
    }
}
