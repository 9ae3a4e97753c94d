use dataflow::{pipeline, Sink, Source};

fn parse(line: String) -> u32 {
    line.len() as u32
}

#[pipeline]
fn parsed(lines: Source<String>, out: Sink<u32>) {
    lines.map(prase).to(out);
}

fn main() {}
