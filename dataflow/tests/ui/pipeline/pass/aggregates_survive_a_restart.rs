use dataflow::broker::{Broker, Start, TopicConfig};
use dataflow::{pipeline, PipelineOptions, Sink, Source};

fn total(sum: u64, word: String) -> u64 {
    sum + word.len() as u64
}

#[pipeline]
fn word_stats(words: Source<String>, counts: Sink<(String, u64)>, lengths: Sink<(String, u64)>) {
    let by_word = words.key_by(|w: &String| w.clone());
    by_word.count().to(counts);
    by_word.fold(0, total).to(lengths);
}

// A stopped pipeline leaves a checkpoint of its aggregates; the next run with the same group
// prefix goes on from it instead of starting afresh.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();
    let words = broker.topic::<String>("words", TopicConfig::new())?;
    let counts = broker.topic::<(String, u64)>("counts", TopicConfig::new())?;
    let lengths = broker.topic::<(String, u64)>("lengths", TopicConfig::new())?;
    let mut counts_read = counts.consumer(Start::Earliest)?;
    let mut lengths_read = lengths.consumer(Start::Earliest)?;
    for round in 1..=2 {
        let running = WordStats::builder()
            .words(&words)
            .counts(&counts)
            .lengths(&lengths)
            .options(PipelineOptions::new().broker(&broker).group("stats"))
            .start()
            .await?;
        words.producer().send("abc".to_owned()).await?;
        assert_eq!(*counts_read.recv().await?, ("abc".to_owned(), round));
        assert_eq!(*lengths_read.recv().await?, ("abc".to_owned(), 3 * round));
        running.shutdown().await?;
    }
    Ok(())
}
