use dataflow::{pipeline, Sink, Source};

#[derive(serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    cents: u64,
}

fn order(id: u64) -> Order {
    Order { id, cents: 100 }
}

fn id(order: Order) -> u64 {
    order.id
}

fn cents(order: Order) -> u64 {
    order.cents
}

#[pipeline]
fn orders(input: Source<u64>, ids: Sink<u64>, amounts: Sink<u64>) {
    let orders = input.map(order);
    orders.map(id).to(ids);
    orders.map(cents).to(amounts);
}

fn main() {}
