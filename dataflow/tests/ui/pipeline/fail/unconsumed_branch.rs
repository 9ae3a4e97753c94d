use dataflow::{pipeline, Sink, Source};

fn is_even(x: &u32) -> bool {
    x % 2 == 0
}

#[pipeline]
fn evens(input: Source<u32>, out: Sink<u32>) {
    let (even, odd) = input.split(is_even);
    even.to(out);
}

fn main() {}
