use dataflow::{pipeline, Sink, Source};

fn length(s: String) -> u32 {
    s.len() as u32
}

fn double(x: u64) -> u64 {
    x * 2
}

#[pipeline]
fn lengths(lines: Source<String>, out: Sink<u64>) {
    lines.map(length).map(double).to(out);
}

fn main() {}
