use dataflow::{pipeline, Sink, Source};

fn is_small(x: &u32) -> bool {
    *x < 10
}

fn checked(x: u32) -> Result<u32, String> {
    if x % 2 == 0 { Ok(x) } else { Err(format!("{x} is odd")) }
}

#[pipeline]
fn routed(input: Source<u32>, small: Sink<u32>, even: Sink<u32>, odd: Sink<String>) {
    let (lo, hi) = input.split(is_small);
    lo.to(small);
    let (evens, odds) = hi.split_result(checked);
    evens.to(even);
    odds.to(odd);
}

fn main() {
    assert_eq!(Routed::graph().edges.len(), 5);
}
