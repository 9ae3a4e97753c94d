use dataflow::{pipeline, Sink, Source};

fn words(line: String) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[pipeline]
fn word_count(lines: Source<String>, counts: Sink<(String, u64)>) {
    lines.flat_map(words).key_by(|w| w.clone()).count().to(counts);
}

fn main() {
    let graph = WordCount::graph();
    assert_eq!(graph.nodes.len(), 5);
    assert!(graph.to_mermaid().contains("words: flat_map"));
}
