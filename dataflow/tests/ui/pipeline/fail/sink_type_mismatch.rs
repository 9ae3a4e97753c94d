use dataflow::{pipeline, Sink, Source};

fn length(s: String) -> usize {
    s.len()
}

#[pipeline]
fn lengths(lines: Source<String>, out: Sink<String>) {
    lines.map(length).to(out);
}

fn main() {}
