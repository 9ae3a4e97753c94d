use dataflow::{pipeline, Sink, Source};

fn len(s: String) -> usize {
    s.len()
}

#[pipeline]
fn words(lines: Source<String>, out: Sink<String>) {
    lines.flat_map(len).to(out);
}

fn main() {}
