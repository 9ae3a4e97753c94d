use dataflow::broker::{Broker, Start, TopicConfig};
use dataflow::{pipeline, stage, Sink, Source};

#[stage]
fn passthrough<T>(t: T) -> T {
    t
}

fn first<T: Clone>(pair: (T, T)) -> T {
    pair.0
}

// `T` is inferred from the stream, as `Iterator::map` infers it: no `::<String>`.
#[pipeline]
fn copy(input: Source<String>, pairs: Source<(u8, u8)>, out: Sink<String>, firsts: Sink<u8>) {
    input.map(passthrough).to(out);
    pairs.map(first).map(passthrough).to(firsts);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();
    let input = broker.topic::<String>("input", TopicConfig::new())?;
    let pairs = broker.topic::<(u8, u8)>("pairs", TopicConfig::new())?;
    let out = broker.topic::<String>("out", TopicConfig::new())?;
    let firsts = broker.topic::<u8>("firsts", TopicConfig::new())?;
    let running = Copy::builder()
        .input(&input)
        .pairs(&pairs)
        .out(&out)
        .firsts(&firsts)
        .start()
        .await?;
    input.producer().send("hello".to_owned()).await?;
    pairs.producer().send((7, 8)).await?;
    assert_eq!(*out.consumer(Start::Earliest)?.recv().await?, "hello");
    assert_eq!(*firsts.consumer(Start::Earliest)?.recv().await?, 7);
    running.shutdown().await?;
    Ok(())
}
