use dataflow::{pipeline, Sink, Source};

#[pipeline]
fn copy(input: Source<u32>, other: Source<u32>, out: Sink<u32>) {
    input.to(out);
}

fn main() {}
