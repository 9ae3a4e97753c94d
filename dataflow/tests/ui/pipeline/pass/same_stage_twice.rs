use dataflow::broker::{Broker, Start, TopicConfig};
use dataflow::{pipeline, Sink, Source};

fn double(x: u32) -> u32 {
    x * 2
}

// The same function in two places is two stages: `double` and `double-2`.
#[pipeline]
fn quadruple(input: Source<u32>, out: Sink<u32>) {
    input.map(double).map(double).to(out);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<&str> = Quadruple::graph().nodes.iter().map(|n| n.name).collect();
    assert_eq!(names, ["input", "out", "double", "double-2"]);

    let broker = Broker::new();
    let input = broker.topic::<u32>("input", TopicConfig::new())?;
    let out = broker.topic::<u32>("out", TopicConfig::new())?;
    let running = Quadruple::builder().input(&input).out(&out).start().await?;
    input.producer().send(3).await?;
    assert_eq!(*out.consumer(Start::Earliest)?.recv().await?, 12);
    let metrics = running.shutdown().await?;
    assert_eq!(metrics.stage("double-2").map(|s| s.count), Some(1));
    Ok(())
}
