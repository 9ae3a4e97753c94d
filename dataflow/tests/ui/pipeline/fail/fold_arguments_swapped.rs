use dataflow::{pipeline, Sink, Source};

fn add(total: u64, x: u64) -> u64 {
    total + x
}

#[pipeline]
fn sums(input: Source<u64>, out: Sink<(u64, u64)>) {
    input.key_by(|x: &u64| x % 10).fold(add, 0u64).to(out);
}

fn main() {}
