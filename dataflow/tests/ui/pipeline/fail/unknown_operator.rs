use dataflow::{pipeline, Sink, Source};

fn inc(x: u32) -> u32 {
    x + 1
}

#[pipeline]
fn incremented(input: Source<u32>, out: Sink<u32>) {
    input.mapp(inc).to(out);
}

fn main() {}
