use dataflow::{pipeline, Sink, Source};

#[derive(Clone)]
struct Order {
    id: u64,
}

fn order(id: u64) -> Order {
    Order { id }
}

#[pipeline]
fn orders(input: Source<u64>, out: Sink<Order>) {
    input.map(order).to(out);
}

fn main() {}
