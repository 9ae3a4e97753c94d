//! From the parsed pipeline to its graph: resolves every stream name, adds a node per call,
//! cuts segments at internal topics, and reports wiring errors as it goes (`check` holds the
//! rules). A statement with an error adds nothing more, and its names count as defined and
//! used, so that one mistake is reported once.

use std::collections::HashMap;

use proc_macro2::Span;

use crate::errors::Errors;
use crate::operators::Kind;
use crate::pipeline::check;
use crate::pipeline::graph::{Graph, Input, Node, Port, Segment};
use crate::pipeline::parse::{Binding, Call, Chain, Model, ParamKind, Statement};
use crate::suggest::closest;

/// A stream bound with `let`.
pub(crate) struct Stream {
    /// `None` when the chain that defines it had an error: uses are then silent.
    pub(crate) port: Option<Port>,
    pub(crate) span: Span,
    pub(crate) uses: usize,
}

/// The graph being built, with what the checks at the end need.
pub(crate) struct Builder<'m> {
    pub(crate) model: &'m Model,
    pub(crate) graph: Graph,
    pub(crate) streams: HashMap<String, Stream>,
    /// Names bound anywhere, with the statement that binds them (to tell cycles from typos).
    bound_at: HashMap<String, usize>,
    pub(crate) param_used: Vec<bool>,
    /// Node index of each parameter.
    param_node: Vec<usize>,
}

/// Builds the graph of `model`, reporting every wiring error into `errors`.
pub(crate) fn build(model: &Model, errors: &mut Errors) -> Graph {
    let mut builder = Builder {
        model,
        graph: Graph::default(),
        streams: HashMap::new(),
        bound_at: HashMap::new(),
        param_used: vec![false; model.params.len()],
        param_node: Vec::new(),
    };
    for (index, statement) in model.statements.iter().enumerate() {
        for name in statement.binding.names() {
            builder.bound_at.entry(name.to_string()).or_insert(index);
        }
    }
    builder.params();
    for (index, statement) in model.statements.iter().enumerate() {
        if builder.chain(index, statement, errors).is_none() {
            builder.abandon(statement);
        }
    }
    check::finish(&builder, errors);
    let mut names: Vec<String> = builder.graph.nodes.iter().map(|n| n.name.clone()).collect();
    crate::names::unique(&mut names);
    for (node, name) in builder.graph.nodes.iter_mut().zip(names) {
        node.name = name;
    }
    for node in &mut builder.graph.nodes {
        // A sink nothing writes to (reported) runs nowhere.
        if node.segment == usize::MAX {
            node.segment = 0;
        }
    }
    builder.graph
}

impl Builder<'_> {
    /// A node per parameter, and a segment per source.
    fn params(&mut self) {
        for (index, param) in self.model.params.iter().enumerate() {
            let node = self.graph.nodes.len();
            let (kind, segment) = match param.kind {
                ParamKind::Source => {
                    self.graph.segments.push(Segment {
                        input: Input::Source { param: index, node },
                        upstream: Vec::new(),
                    });
                    (Kind::Source, self.graph.segments.len() - 1)
                }
                // Sinks run in the segment of the first stream written to them.
                ParamKind::Sink => (Kind::Sink, usize::MAX),
            };
            self.graph.nodes.push(Node {
                kind,
                name: param.name.to_string(),
                stage: None,
                init: None,
                limit: None,
                span: param.name.span(),
                inputs: Vec::new(),
                input_spans: Vec::new(),
                use_spans: Vec::new(),
                segment,
                keyed: false,
                param: Some(index),
            });
            self.param_node.push(node);
        }
    }

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
            return Some(Port::first(self.param_node[param]));
        }
        if let Some(stream) = self.streams.get_mut(&name) {
            stream.uses += 1;
            return stream.port;
        }
        if self.model.is_value(ident) {
            errors.push(
                ident.span(),
                format!("`{name}` is a value, not a stream: a chain starts at a source parameter or at a stream bound with `let`"),
            );
            return None;
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

    /// The segment that reads what `port` carries.
    fn segment_of(&self, port: Port) -> usize {
        self.graph.downstream_segment(port.node)
    }

    /// Adds the node of `call` (not a sink) reading `inputs`, used at `uses`; returns its
    /// index.
    fn add(&mut self, kind: Kind, call: &Call, inputs: Vec<(Port, Span)>) -> usize {
        let (inputs, use_spans): (Vec<Port>, Vec<Span>) = inputs.into_iter().unzip();
        let index = self.graph.nodes.len();
        let segment = if kind.starts_segment() {
            let mut upstream: Vec<usize> = inputs.iter().map(|&p| self.segment_of(p)).collect();
            upstream.sort_unstable();
            upstream.dedup();
            self.graph.segments.push(Segment {
                input: Input::Internal { node: index },
                upstream,
            });
            self.graph.segments.len() - 1
        } else {
            self.segment_of(inputs[0])
        };
        let keyed = match kind {
            Kind::KeyBy | Kind::Count | Kind::Fold | Kind::Reduce => true,
            Kind::Filter | Kind::Inspect | Kind::Split => self.graph.nodes[inputs[0].node].keyed,
            Kind::Merge => inputs.iter().all(|p| self.graph.nodes[p.node].keyed),
            _ => false,
        };
        let stage = match kind {
            Kind::Count | Kind::Merge | Kind::Sink | Kind::Source => None,
            Kind::Fold => call.args.get(1).cloned(),
            _ => call.args.first().cloned(),
        };
        let name = match (&call.name, stage.as_ref().and_then(path_name)) {
            (Some(name), _) => name.value(),
            (None, Some(name)) => name,
            (None, None) => format!("{}_{index}", call.method),
        };
        self.graph.nodes.push(Node {
            kind,
            name,
            stage,
            init: (kind == Kind::Fold).then(|| call.args[0].clone()),
            limit: kind.is_async().then(|| call.args.get(1).cloned()).flatten(),
            span: call.span,
            input_spans: vec![call.span; inputs.len()],
            use_spans,
            inputs,
            segment,
            keyed,
            param: None,
        });
        if kind == Kind::KeyBy {
            self.graph.segments.push(Segment {
                input: Input::Internal { node: index },
                upstream: vec![segment],
            });
        }
        index
    }

    /// After an error in a statement: its parameters count as used and its names as defined,
    /// so that the error is not echoed by "never read" or "unknown stream" errors.
    fn abandon(&mut self, statement: &Statement) {
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
        for name in statement.binding.names() {
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
    fn chain(&mut self, index: usize, statement: &Statement, errors: &mut Errors) -> Option<()> {
        let chain = &statement.chain;
        let mut current = self.resolve(&chain.root, index, errors)?;
        // Where `current` is used by the next call: the chain's root, then each call.
        let mut used_at = chain.root.span();
        // Set once the chain has ended in `.to(sink)`.
        let mut ended = false;
        // The split node, once the chain has split in two.
        let mut split: Option<usize> = None;
        for call in &chain.calls {
            if ended {
                errors.push(call.span, "`to` ends a stream: nothing can follow it");
                return None;
            }
            if split.is_some() {
                errors.push(
                    call.span,
                    "`split` has two outputs: bind them with `let (yes, no) = ...` and continue from each",
                );
                return None;
            }
            let kind = check::call(call, self.graph.nodes[current.node].keyed, errors)?;
            match kind {
                Kind::Sink => {
                    self.sink(current, used_at, call, errors)?;
                    ended = true;
                }
                Kind::Merge => {
                    let mut inputs = vec![(current, used_at)];
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
                        inputs.push((port?, syn::spanned::Spanned::span(arg)));
                    }
                    current = Port::first(self.add(kind, call, inputs));
                }
                Kind::Split | Kind::SplitResult => {
                    split = Some(self.add(kind, call, vec![(current, used_at)]));
                }
                _ => current = Port::first(self.add(kind, call, vec![(current, used_at)])),
            }
            used_at = call.span;
        }
        self.bind(statement, chain, current, ended, split, errors);
        Some(())
    }

    /// `.to(sink)`: an edge from `current` into the sink's node.
    fn sink(
        &mut self,
        current: Port,
        used_at: Span,
        call: &Call,
        errors: &mut Errors,
    ) -> Option<()> {
        let target = match &call.args[0] {
            syn::Expr::Path(p) => p.path.get_ident(),
            _ => None,
        };
        match target.and_then(|t| self.param(t)) {
            Some(param) if self.model.params[param].kind == ParamKind::Sink => {
                self.param_used[param] = true;
                let segment = self.segment_of(current);
                let sink = &mut self.graph.nodes[self.param_node[param]];
                sink.inputs.push(current);
                // Where a stream of the wrong type is reported: "this sink takes `T`".
                sink.input_spans
                    .push(syn::spanned::Spanned::span(&call.args[0]));
                sink.use_spans.push(used_at);
                if sink.segment == usize::MAX {
                    sink.segment = segment;
                }
                Some(())
            }
            _ => {
                errors.push_spanned(&call.args[0], "`to` takes a sink parameter of the pipeline");
                None
            }
        }
    }

    /// Binds what the chain ends with to the statement's names, or reports why it cannot.
    fn bind(
        &mut self,
        statement: &Statement,
        chain: &Chain,
        current: Port,
        ended: bool,
        split: Option<usize>,
        errors: &mut Errors,
    ) {
        match (&statement.binding, ended, split) {
            (Binding::None, false, None) => errors.push(
                chain.span,
                "this stream is never consumed: end it with `.to(sink)`, or bind it with `let` and use it",
            ),
            (Binding::None, true, None) | (Binding::One(None), _, None) => {}
            (Binding::One(Some(name)), false, None) => self.define(name, current),
            (Binding::One(Some(name)), true, None) => errors.push(
                name.span(),
                format!("`{name}` is bound to a chain that ends in `.to(..)`: there is no stream left to bind"),
            ),
            (Binding::Two(a, b), false, Some(node)) => {
                if let Some(a) = a {
                    self.define(a, Port { node, output: 0 });
                }
                if let Some(b) = b {
                    self.define(b, Port { node, output: 1 });
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
    }

    fn define(&mut self, name: &syn::Ident, port: Port) {
        self.streams.insert(
            name.to_string(),
            Stream {
                port: Some(port),
                span: name.span(),
                uses: 0,
            },
        );
    }
}

/// The name a path stage shows in metrics: its last segment.
fn path_name(expr: &syn::Expr) -> Option<String> {
    match expr {
        syn::Expr::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;
    use crate::pipeline::parse::parse;

    fn graph_of(function: syn::ItemFn) -> (Graph, Vec<String>) {
        let mut errors = Errors::new();
        let model = parse(function, &mut errors);
        let graph = build(&model, &mut errors);
        (graph, errors.messages())
    }

    fn kinds(graph: &Graph) -> Vec<Kind> {
        graph.nodes.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn a_key_by_cuts_the_chain_into_two_segments() {
        let (graph, errors) = graph_of(parse_quote! {
            fn views(raw: Source<String>, out: Sink<(String, u64)>) {
                raw.map(parse).key_by(page).count().to(out);
            }
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            kinds(&graph),
            [
                Kind::Source,
                Kind::Sink,
                Kind::Map,
                Kind::KeyBy,
                Kind::Count
            ]
        );
        let segments: Vec<usize> = graph.nodes.iter().map(|n| n.segment).collect();
        // The source, `map` and `key_by` run in segment 0; `count` and the sink after the
        // repartition, in segment 1.
        assert_eq!(segments, [0, 1, 0, 0, 1]);
        assert_eq!(graph.segments[1].input, Input::Internal { node: 3 });
        assert_eq!(graph.segments[1].upstream, [0]);
        assert!(graph.nodes[4].keyed, "count emits (key, count) pairs");
        assert_eq!(graph.nodes[1].inputs, [Port::first(4)]);
    }

    #[test]
    fn a_split_binds_two_ports_and_a_merge_reads_both() {
        let (graph, errors) = graph_of(parse_quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                let (even, odd) = input.split(is_even);
                even.merge(odd).to(out);
            }
        });
        assert!(errors.is_empty(), "{errors:?}");
        let merge = graph
            .nodes
            .iter()
            .position(|n| n.kind == Kind::Merge)
            .unwrap();
        assert_eq!(
            graph.nodes[merge].inputs,
            [Port { node: 2, output: 0 }, Port { node: 2, output: 1 }]
        );
        assert_eq!(
            graph.nodes[merge].segment, 1,
            "a merge reads an internal topic"
        );
    }

    #[test]
    fn closures_are_named_after_their_operator_and_position() {
        let (graph, _) = graph_of(parse_quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                input.map(|x| x + 1).map(double).to(out);
            }
        });
        let names: Vec<&str> = graph.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["input", "out", "map_2", "double"]);
    }

    #[test]
    fn every_error_of_a_pipeline_is_reported_once() {
        let (_, errors) = graph_of(parse_quote! {
            fn f(input: Source<u32>, unused: Source<u32>, out: Sink<u32>) {
                input.mapp(inc).to(out);
                let dangling = input.map(inc);
                inptu.to(out);
            }
        });
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].starts_with("unknown operator `mapp`: did you mean `map`?"));
        assert!(errors[1].starts_with("unknown stream `inptu`"));
        assert!(errors[1].contains("did you mean `input`?"));
        assert!(errors[2].starts_with("stream `dangling` is never consumed"));
        assert_eq!(errors[3], "source `unused` is never read");
    }

    #[test]
    fn a_stream_used_before_its_definition_is_a_cycle() {
        let (_, errors) = graph_of(parse_quote! {
            fn f(input: Source<u32>, out: Sink<u32>) {
                let a = b.map(inc);
                let b = a.map(inc);
                b.merge(input).to(out);
            }
        });
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].contains("used before it is defined"),
            "{errors:?}"
        );
    }
}
