use dataflow::{pipeline, Sink, Source};

#[pipeline]
fn counted(input: Source<u32>, out: Sink<(u32, u64)>) {
    input.count().to(out);
}

fn main() {}
