//! The pipeline as a graph: nodes, ports, segments; and every structural check.

use std::collections::HashMap;

use proc_macro2::Span;
use syn::spanned::Spanned;

use crate::errors::Errors;
use crate::pipeline::parse::{Binding, Call, Model, ParamKind};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Source,
    Sink,
    Map,
    MapAsync,
    MapAsyncUnordered,
    Filter,
    FilterMap,
    FlatMap,
    Inspect,
    KeyBy,
    Merge,
    Split,
    SplitResult,
    Count,
    Fold,
    Reduce,
}

impl Kind {
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Kind::Source => "Source",
            Kind::Sink => "Sink",
            Kind::Map => "Map",
            Kind::MapAsync => "MapAsync",
            Kind::MapAsyncUnordered => "MapAsyncUnordered",
            Kind::Filter => "Filter",
            Kind::FilterMap => "FilterMap",
            Kind::FlatMap => "FlatMap",
            Kind::Inspect => "Inspect",
            Kind::KeyBy => "KeyBy",
            Kind::Merge => "Merge",
            Kind::Split => "Split",
            Kind::SplitResult => "SplitResult",
            Kind::Count => "Count",
            Kind::Fold => "Fold",
            Kind::Reduce => "Reduce",
        }
    }
}

/// The operators, with the number of arguments each takes.
const OPERATORS: &[(&str, Kind, Arity)] = &[
    ("map", Kind::Map, Arity::Exactly(1)),
    ("map_async", Kind::MapAsync, Arity::Range(1, 2)),
    (
        "map_async_unordered",
        Kind::MapAsyncUnordered,
        Arity::Range(1, 2),
    ),
    ("filter", Kind::Filter, Arity::Exactly(1)),
    ("filter_map", Kind::FilterMap, Arity::Exactly(1)),
    ("flat_map", Kind::FlatMap, Arity::Exactly(1)),
    ("inspect", Kind::Inspect, Arity::Exactly(1)),
    ("key_by", Kind::KeyBy, Arity::Exactly(1)),
    ("merge", Kind::Merge, Arity::AtLeast(1)),
    ("split", Kind::Split, Arity::Exactly(1)),
    ("split_result", Kind::SplitResult, Arity::Exactly(1)),
    ("count", Kind::Count, Arity::Exactly(0)),
    ("fold", Kind::Fold, Arity::Exactly(2)),
    ("reduce", Kind::Reduce, Arity::Exactly(1)),
    ("to", Kind::Sink, Arity::Exactly(1)),
];

#[derive(Clone, Copy)]
enum Arity {
    Exactly(usize),
    AtLeast(usize),
    Range(usize, usize),
}

/// An output of a node: 0, or 1 for the second branch of a split.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Port {
    pub(crate) node: usize,
    pub(crate) output: u8,
}

pub(crate) struct Node {
    pub(crate) kind: Kind,
    /// The name when the stage is not a path (or for sources, sinks and aggregates).
    pub(crate) name: String,
    /// The stage argument.
    pub(crate) stage: Option<syn::Expr>,
    /// `fold`'s initial state.
    pub(crate) init: Option<syn::Expr>,
    /// An async stage's limit of records in flight.
    pub(crate) limit: Option<syn::Expr>,
    pub(crate) span: Span,
    pub(crate) inputs: Vec<Port>,
    /// The call that made each input edge (for a sink: each `.to(..)`).
    pub(crate) input_spans: Vec<Span>,
    pub(crate) segment: usize,
    /// Whether the output is a `(key, value)` stream partitioned by key.
    pub(crate) keyed: bool,
    /// For sources and sinks: the parameter's index.
    pub(crate) param: Option<usize>,
}

/// Where a segment reads from.
#[derive(Clone, Copy)]
pub(crate) enum Input {
    /// The topic bound to this parameter (the source node's index is `node`).
    Source { param: usize, node: usize },
    /// The internal topic written by this `key_by` or `merge` node.
    Internal { node: usize },
}

pub(crate) struct Segment {
    pub(crate) input: Input,
    pub(crate) upstream: Vec<usize>,
}

pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) segments: Vec<Segment>,
}

impl Graph {
    /// Consumers of a port, in order.
    pub(crate) fn consumers(&self, port: Port) -> impl Iterator<Item = usize> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(_, n)| n.inputs.contains(&port))
            .map(|(i, _)| i)
    }

    /// The segment whose tasks run node `node`'s downstream: for a `key_by`, the next one.
    pub(crate) fn downstream_segment(&self, node: usize) -> usize {
        match self.nodes[node].kind {
            Kind::KeyBy => self
                .segments
                .iter()
                .position(|s| matches!(s.input, Input::Internal { node: n } if n == node))
                .expect("every key_by starts a segment"),
            _ => self.nodes[node].segment,
        }
    }
}

struct Stream {
    /// `None` when the chain that defines it had an error: uses are then silent.
    port: Option<Port>,
    span: Span,
    uses: usize,
}

/// The graph being built.
struct Builder<'m> {
    model: &'m Model,
    nodes: Vec<Node>,
    segments: Vec<Segment>,
    streams: HashMap<String, Stream>,
    /// Names bound anywhere, with the statement that binds them (to tell cycles from typos).
    bound_at: HashMap<String, usize>,
    param_used: Vec<bool>,
    /// Node index of each parameter.
    param_node: Vec<usize>,
}

pub(crate) fn build(model: &Model, errors: &mut Errors) -> Graph {
    let mut builder = Builder {
        model,
        nodes: Vec::new(),
        segments: Vec::new(),
        streams: HashMap::new(),
        bound_at: HashMap::new(),
        param_used: vec![false; model.params.len()],
        param_node: Vec::new(),
    };
    for (i, statement) in model.statements.iter().enumerate() {
        let names: Vec<&syn::Ident> = match &statement.binding {
            Binding::None | Binding::One(None) => vec![],
            Binding::One(Some(a)) => vec![a],
            Binding::Two(a, b) => a.iter().chain(b.iter()).collect(),
        };
        for name in names {
            builder.bound_at.entry(name.to_string()).or_insert(i);
        }
    }
    for (index, param) in model.params.iter().enumerate() {
        let kind = match param.kind {
            ParamKind::Source => Kind::Source,
            ParamKind::Sink => Kind::Sink,
        };
        let node = builder.nodes.len();
        let segment = if kind == Kind::Source {
            builder.segments.push(Segment {
                input: Input::Source { param: index, node },
                upstream: Vec::new(),
            });
            builder.segments.len() - 1
        } else {
            usize::MAX
        };
        builder.nodes.push(Node {
            kind,
            name: param.name.to_string(),
            stage: None,
            init: None,
            limit: None,
            span: param.name.span(),
            inputs: Vec::new(),
            input_spans: Vec::new(),
            segment,
            keyed: false,
            param: Some(index),
        });
        builder.param_node.push(node);
    }
    for (index, statement) in model.statements.iter().enumerate() {
        builder.statement(index, statement, errors);
    }
    builder.finish(errors)
}

impl Builder<'_> {
    fn param(&self, ident: &syn::Ident) -> Option<usize> {
        self.model.params.iter().position(|p| p.name == *ident)
    }

    /// The stream named `ident` as the start of a chain or an argument of `merge`; `None` if
    /// it is unknown (reported) or was defined by a chain with an error (not reported again).
    fn resolve(
        &mut self,
        ident: &syn::Ident,
        statement: usize,
        errors: &mut Errors,
    ) -> Option<Port> {
        let name = ident.to_string();
        if let Some(param) = self.param(ident) {
            if self.model.params[param].kind == ParamKind::Sink {
                errors.push(
                    ident.span(),
                    format!(
                        "`{name}` is a sink: streams flow into it with `.to({name})`, not out of it"
                    ),
                );
                return None;
            }
            self.param_used[param] = true;
            return Some(Port {
                node: self.param_node[param],
                output: 0,
            });
        }
        if let Some(stream) = self.streams.get_mut(&name) {
            stream.uses += 1;
            return stream.port;
        }
        match self.bound_at.get(&name) {
            Some(&at) if at >= statement => errors.push(
                ident.span(),
                format!(
                    "stream `{name}` is used before it is defined: this would make a cycle, and pipelines are acyclic"
                ),
            ),
            _ => {
                let known: Vec<String> = self
                    .model
                    .params
                    .iter()
                    .filter(|p| p.kind == ParamKind::Source)
                    .map(|p| p.name.to_string())
                    .chain(self.streams.keys().cloned())
                    .collect();
                let hint = closest(&name, known.iter().map(String::as_str))
                    .map(|k| format!(", did you mean `{k}`?"))
                    .unwrap_or_default();
                errors.push(
                    ident.span(),
                    format!("unknown stream `{name}`: a chain starts at a source parameter or at a stream bound with `let`{hint}"),
                );
            }
        }
        None
    }

    fn add(&mut self, kind: Kind, call: &Call, inputs: Vec<Port>) -> usize {
        let index = self.nodes.len();
        let upstream_segment = |b: &Self, port: Port| {
            let node = &b.nodes[port.node];
            if node.kind == Kind::KeyBy {
                b.segments
                    .iter()
                    .position(|s| matches!(s.input, Input::Internal { node: n } if n == port.node))
                    .expect("key_by segments exist")
            } else {
                node.segment
            }
        };
        let segment = if matches!(kind, Kind::Merge | Kind::MapAsync | Kind::MapAsyncUnordered) {
            let mut upstream: Vec<usize> =
                inputs.iter().map(|&p| upstream_segment(self, p)).collect();
            upstream.sort_unstable();
            upstream.dedup();
            self.segments.push(Segment {
                input: Input::Internal { node: index },
                upstream,
            });
            self.segments.len() - 1
        } else {
            upstream_segment(self, inputs[0])
        };
        let keyed = match kind {
            Kind::KeyBy | Kind::Count | Kind::Fold | Kind::Reduce => true,
            Kind::Filter | Kind::Inspect | Kind::Split => self.nodes[inputs[0].node].keyed,
            Kind::Merge => inputs.iter().all(|p| self.nodes[p.node].keyed),
            _ => false,
        };
        let stage = match kind {
            Kind::Count | Kind::Merge | Kind::Sink => None,
            Kind::Fold => call.args.get(1).cloned(),
            _ => call.args.first().cloned(),
        };
        let name = match stage.as_ref().and_then(path_name) {
            Some(name) => name,
            None => format!("{}_{index}", call.method),
        };
        self.nodes.push(Node {
            kind,
            name,
            stage,
            init: (kind == Kind::Fold).then(|| call.args[0].clone()),
            limit: matches!(kind, Kind::MapAsync | Kind::MapAsyncUnordered)
                .then(|| call.args.get(1).cloned())
                .flatten(),
            span: call.span,
            input_spans: vec![call.span; inputs.len()],
            inputs,
            segment,
            keyed,
            param: None,
        });
        if kind == Kind::KeyBy {
            let upstream = vec![segment];
            self.segments.push(Segment {
                input: Input::Internal { node: index },
                upstream,
            });
        }
        index
    }

    fn statement(
        &mut self,
        index: usize,
        statement: &crate::pipeline::parse::Statement,
        errors: &mut Errors,
    ) {
        if self.chain(index, statement, errors).is_none() {
            self.abandon(statement);
        }
    }

    /// After an error in a statement: its parameters count as used and its names as defined,
    /// so that the error is not echoed by "never read" or "unknown stream" errors.
    fn abandon(&mut self, statement: &crate::pipeline::parse::Statement) {
        let chain = &statement.chain;
        let mentioned = std::iter::once(&chain.root).chain(chain.calls.iter().flat_map(|call| {
            call.args.iter().filter_map(|arg| match arg {
                syn::Expr::Path(p) => p.path.get_ident(),
                _ => None,
            })
        }));
        for ident in mentioned {
            if let Some(param) = self.param(ident) {
                self.param_used[param] = true;
            }
        }
        let names: Vec<&syn::Ident> = match &statement.binding {
            Binding::None | Binding::One(None) => vec![],
            Binding::One(Some(a)) => vec![a],
            Binding::Two(a, b) => a.iter().chain(b.iter()).collect(),
        };
        for name in names {
            self.streams.insert(
                name.to_string(),
                Stream {
                    port: None,
                    span: name.span(),
                    uses: 1,
                },
            );
        }
    }

    /// Builds a statement's nodes; `None` after an error.
    fn chain(
        &mut self,
        index: usize,
        statement: &crate::pipeline::parse::Statement,
        errors: &mut Errors,
    ) -> Option<()> {
        let chain = &statement.chain;
        let mut current = self.resolve(&chain.root, index, errors)?;
        // `None` once the chain has ended in `.to(sink)`; `Some(Two)` after a split.
        let mut ended = false;
        let mut split: Option<usize> = None;
        for call in &chain.calls {
            let method = call.method.to_string();
            if ended {
                errors.push(call.span, "`to` ends a stream: nothing can follow it");
                return None;
            }
            if let Some(node) = split {
                let _ = node;
                errors.push(
                    call.span,
                    "`split` has two outputs: bind them with `let (yes, no) = ...` and continue from each",
                );
                return None;
            }
            let Some(&(_, kind, arity)) = OPERATORS.iter().find(|(name, _, _)| *name == method)
            else {
                let hint = closest(&method, OPERATORS.iter().map(|(n, _, _)| *n))
                    .map(|k| format!("did you mean `{k}`? "))
                    .unwrap_or_default();
                let all: Vec<String> = OPERATORS.iter().map(|(n, _, _)| format!("`{n}`")).collect();
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
            let arity_ok = match arity {
                Arity::Exactly(n) => given == n,
                Arity::AtLeast(n) => given >= n,
                Arity::Range(min, max) => (min..=max).contains(&given),
            };
            if !arity_ok {
                let wanted = match (kind, arity) {
                    (Kind::Fold, _) => {
                        "2 arguments: the initial state and a stage `fn(S, V) -> S`".to_owned()
                    }
                    (Kind::Merge, _) => "the streams to merge with, at least one".to_owned(),
                    (Kind::Sink, _) => "1 argument: a sink parameter".to_owned(),
                    (Kind::MapAsync | Kind::MapAsyncUnordered, _) => {
                        "an async stage, and optionally how many records it may have in flight"
                            .to_owned()
                    }
                    (_, Arity::Exactly(0)) => "no argument".to_owned(),
                    (_, Arity::Exactly(1)) => "1 argument: a stage".to_owned(),
                    (_, _) => "other arguments".to_owned(),
                };
                errors.push(
                    call.span,
                    format!("`{method}` takes {wanted}, {given} given"),
                );
                return None;
            }
            if matches!(kind, Kind::Count | Kind::Fold | Kind::Reduce)
                && !self.nodes[current.node].keyed
            {
                errors.push(
                    call.span,
                    format!("`{method}` needs a keyed stream: call `.key_by(..)` before it"),
                );
                return None;
            }
            match kind {
                Kind::Sink => {
                    let target = match &call.args[0] {
                        syn::Expr::Path(p) => p.path.get_ident().cloned(),
                        _ => None,
                    };
                    let param = target.as_ref().and_then(|t| self.param(t));
                    match param {
                        Some(param) if self.model.params[param].kind == ParamKind::Sink => {
                            self.param_used[param] = true;
                            let sink = self.param_node[param];
                            self.nodes[sink].inputs.push(current);
                            self.nodes[sink].input_spans.push(call.span);
                            if self.nodes[sink].segment == usize::MAX {
                                self.nodes[sink].segment = self.downstream_of(current);
                            }
                            ended = true;
                        }
                        _ => {
                            errors.push_spanned(
                                &call.args[0],
                                "`to` takes a sink parameter of the pipeline",
                            );
                            return None;
                        }
                    }
                }
                Kind::Merge => {
                    let mut inputs = vec![current];
                    for arg in &call.args {
                        let port = match arg {
                            syn::Expr::Path(p) if p.path.get_ident().is_some() => {
                                self.resolve(p.path.get_ident().expect("checked"), index, errors)
                            }
                            other => {
                                errors.push_spanned(
                                    other,
                                    "`merge` takes streams: sources or streams bound with `let`",
                                );
                                None
                            }
                        };
                        match port {
                            Some(port) => inputs.push(port),
                            None => return None,
                        }
                    }
                    let node = self.add(kind, call, inputs);
                    current = Port { node, output: 0 };
                }
                Kind::Split | Kind::SplitResult => {
                    let node = self.add(kind, call, vec![current]);
                    split = Some(node);
                }
                _ => {
                    let node = self.add(kind, call, vec![current]);
                    current = Port { node, output: 0 };
                }
            }
        }
        match (&statement.binding, ended, split) {
            (Binding::None, false, None) => {
                errors.push(
                    chain.span,
                    "this stream is never consumed: end it with `.to(sink)`, or bind it with `let` and use it",
                );
            }
            (Binding::None, true, None) | (Binding::One(None), _, None) => {}
            (Binding::One(Some(name)), false, None) => self.bind(name, current),
            (Binding::One(Some(name)), true, None) => errors.push(
                name.span(),
                format!("`{name}` is bound to a chain that ends in `.to(..)`: there is no stream left to bind"),
            ),
            (Binding::Two(a, b), false, Some(node)) => {
                if let Some(a) = a {
                    self.bind(a, Port { node, output: 0 });
                }
                if let Some(b) = b {
                    self.bind(b, Port { node, output: 1 });
                }
            }
            (Binding::Two(..), _, None) => errors.push(
                chain.span,
                "only `split` and `split_result` make two streams: bind one stream with `let name = ...`",
            ),
            (_, _, Some(_)) => errors.push(
                chain.span,
                "`split` has two outputs: bind them with `let (yes, no) = ...`",
            ),
        }
        Some(())
    }

    /// The segment a sink written from `port` is shown in.
    fn downstream_of(&self, port: Port) -> usize {
        let node = &self.nodes[port.node];
        if node.kind == Kind::KeyBy {
            self.segments
                .iter()
                .position(|s| matches!(s.input, Input::Internal { node: n } if n == port.node))
                .expect("key_by segments exist")
        } else {
            node.segment
        }
    }

    fn bind(&mut self, name: &syn::Ident, port: Port) {
        self.streams.insert(
            name.to_string(),
            Stream {
                port: Some(port),
                span: name.span(),
                uses: 0,
            },
        );
    }

    fn finish(mut self, errors: &mut Errors) -> Graph {
        let mut unused: Vec<(&String, &Stream)> =
            self.streams.iter().filter(|(_, s)| s.uses == 0).collect();
        unused.sort_by_key(|(name, _)| name.as_str());
        for (name, stream) in unused {
            errors.push(
                stream.span,
                format!("stream `{name}` is never consumed: use it, end it with `.to(sink)`, or bind it to `_`"),
            );
        }
        for (index, param) in self.model.params.iter().enumerate() {
            if !self.param_used[index] {
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
        let mut seen: HashMap<String, Span> = HashMap::new();
        for node in &self.nodes {
            if let Some(first) = seen.get(&node.name) {
                let _ = first;
                let what = node.stage.as_ref().map_or(node.span, |s| s.span());
                errors.push(
                    what,
                    format!(
                        "duplicate stage name `{}`: each stage of a pipeline needs its own name (metrics and graphs are per stage); use a differently named function, or `#[stage(name = \"...\")]` on a wrapper",
                        node.name
                    ),
                );
            } else {
                seen.insert(node.name.clone(), node.span);
            }
        }
        for node in &mut self.nodes {
            if node.segment == usize::MAX {
                node.segment = 0;
            }
        }
        Graph {
            nodes: self.nodes,
            segments: self.segments,
        }
    }
}

/// The name a path stage shows in metrics: its last segment.
fn path_name(expr: &syn::Expr) -> Option<String> {
    match expr {
        syn::Expr::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// The closest candidate by edit distance, if it is close enough to be a typo.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (distance(name, c), c))
        .filter(|&(d, c)| d > 0 && d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_closest_operator() {
        assert_eq!(closest("mapp", ["map", "filter"].into_iter()), Some("map"));
        assert_eq!(
            closest("fliter", ["map", "filter"].into_iter()),
            Some("filter")
        );
        assert_eq!(closest("zzzzzz", ["map", "filter"].into_iter()), None);
    }
}
