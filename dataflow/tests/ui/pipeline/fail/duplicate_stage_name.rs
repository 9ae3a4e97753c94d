use dataflow::{pipeline, Sink, Source};

fn double(x: u32) -> u32 {
    x * 2
}

#[pipeline]
fn quadruple(input: Source<u32>, out: Sink<u32>) {
    input.map(double).map(double).to(out);
}

fn main() {}
