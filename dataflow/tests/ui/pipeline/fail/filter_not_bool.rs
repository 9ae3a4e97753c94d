use dataflow::{pipeline, Sink, Source};

fn score(x: &u32) -> u32 {
    *x
}

#[pipeline]
fn scored(input: Source<u32>, out: Sink<u32>) {
    input.filter(score).to(out);
}

fn main() {}
