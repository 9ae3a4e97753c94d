use dataflow::{pipeline, Sink, Source};

#[pipeline]
fn named(input: Source<u32>, out: Sink<u32>) {
    input.map(|x: u32| x + 1, name = "add one").to(out, name = "out");
}

fn main() {}
