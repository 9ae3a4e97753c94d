use dataflow::{pipeline, Sink, Source};

fn inc(x: u32) -> u32 {
    x + 1
}

#[pipeline]
fn broken(input: Source<u32>, unused: Source<u32>, out: Sink<u32>) {
    input.mapp(inc).to(out);
    let dangling = input.map(inc);
}

fn main() {}
