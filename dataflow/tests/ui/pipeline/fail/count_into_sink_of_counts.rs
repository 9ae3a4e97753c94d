use dataflow::{pipeline, Sink, Source};

#[pipeline]
fn counts(words: Source<String>, totals: Sink<u64>) {
    words.key_by(|w: &String| w.clone()).count().to(totals);
}

fn main() {}
