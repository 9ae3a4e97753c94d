use dataflow::{pipeline, Sink, Source};

struct Limit(u32);

#[pipeline]
fn limited(input: Source<u32>, out: Sink<u32>) {
    let limit = Limit(10);
    input.filter(|x| *x < limit.0).to(out);
}

fn main() {}
