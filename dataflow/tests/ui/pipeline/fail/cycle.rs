use dataflow::{pipeline, Sink, Source};

fn inc(x: u32) -> u32 {
    x + 1
}

#[pipeline]
fn looping(input: Source<u32>, out: Sink<u32>) {
    let a = b.map(inc);
    let b = a.map(inc);
    b.merge(input).to(out);
}

fn main() {}
