use dataflow::broker::{Broker, Start, TopicConfig};
use dataflow::{pipeline, Sink, Source};

fn parity(x: &u32) -> u32 {
    x % 2
}

// Values the wiring uses: a threshold, a constant, a closure named by its variable, and a
// closure named in place.
#[pipeline]
fn big_numbers(input: Source<u32>, out: Sink<(u32, u64)>) {
    const LIMIT: u32 = 1_000;
    let threshold = String::from("10").parse::<u32>().unwrap();
    let by_parity = |x: &u32| parity(x);
    input
        .filter(|x| *x >= threshold && *x < LIMIT)
        .inspect(|x: &u32| assert!(*x >= threshold), name = "check")
        .key_by(by_parity)
        .count()
        .to(out);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<&str> = BigNumbers::graph().nodes.iter().map(|n| n.name).collect();
    assert_eq!(names, ["input", "out", "filter_2", "check", "by_parity", "count_5"]);

    let broker = Broker::new();
    let input = broker.topic::<u32>("input", TopicConfig::new().partitions(2))?;
    let out = broker.topic::<(u32, u64)>("out", TopicConfig::new())?;
    let running = BigNumbers::builder().input(&input).out(&out).start().await?;
    for x in [3, 10, 11, 12, 5_000] {
        input.producer().send(x).await?;
    }
    let mut reader = out.consumer(Start::Earliest)?;
    let mut last = std::collections::BTreeMap::new();
    for _ in 0..3 {
        let record = reader.recv().await?;
        last.insert(record.0, record.1);
    }
    assert_eq!(last, [(0, 2), (1, 1)].into());
    running.shutdown().await?;
    Ok(())
}
