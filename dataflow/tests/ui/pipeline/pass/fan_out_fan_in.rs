use dataflow::{pipeline, Sink, Source};

fn double(x: u64) -> u64 {
    x * 2
}

fn square(x: u64) -> u64 {
    x * x
}

#[pipeline]
fn branches(input: Source<u64>, both: Sink<u64>, doubled: Sink<u64>) {
    let numbers = input.filter(|x| *x > 0);
    let twice = numbers.map(double);
    let squared = numbers.map(square);
    twice.to(doubled);
    let again = numbers.inspect(|x| assert!(*x > 0));
    squared.merge(again).to(both);
}

fn main() {
    assert_eq!(Branches::graph().nodes.len(), 8);
}
