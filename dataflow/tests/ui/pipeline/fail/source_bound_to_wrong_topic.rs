use dataflow::broker::{Broker, TopicConfig};
use dataflow::{pipeline, Sink, Source};

#[pipeline]
fn copy(input: Source<String>, out: Sink<String>) {
    input.to(out);
}

fn main() {
    let broker = Broker::new();
    let numbers = broker.topic::<u64>("numbers", TopicConfig::new()).unwrap();
    let _ = Copy::builder().input(numbers);
}
