use dataflow::{pipeline, Sink, Source};

#[pipeline]
fn limited(input: Source<u32>, out: Sink<u32>) {
    let limit = 10;
    limit.map(|x: u32| x + 1).to(out);
    input.filter(|x| *x < limit).to(out);
}

fn main() {}
