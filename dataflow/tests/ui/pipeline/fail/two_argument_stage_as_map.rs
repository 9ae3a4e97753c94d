use dataflow::{pipeline, Sink, Source};

fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[pipeline]
fn sums(input: Source<u32>, out: Sink<u32>) {
    input.map(add).to(out);
}

fn main() {}
