//! The pipelines the bridge tests run on every backend, and what they share.

use dataflow::{Sink, Source, pipeline};

/// What a test returns.
pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A two-worker runtime, as a small deployment would have.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The lowercase words of `line`.
pub fn words(line: String) -> Vec<String> {
    line.split_whitespace().map(str::to_lowercase).collect()
}

#[pipeline]
pub fn word_count(lines: Source<String>, counts: Sink<(String, u64)>) {
    lines
        .flat_map(words)
        .key_by(|word| word.clone())
        .count()
        .to(counts);
}

#[pipeline]
pub fn copy(input: Source<u64>, output: Sink<u64>) {
    input.map(|x: u64| x).to(output);
}

/// Passes numbers on, except 13: a dead letter of error `unlucky`.
#[pipeline]
pub fn unlucky(input: Source<u64>, output: Sink<u64>) {
    input
        .map(|x: u64| if x == 13 { Err("unlucky") } else { Ok(x) })
        .to(output);
}

/// `copy` at 200 µs a record, for the kill tests (R2): a batch takes a few milliseconds
/// between its read and its commit, so a kill at a random point often lands inside one.
#[pipeline]
pub fn slow_copy(input: Source<u64>, output: Sink<u64>) {
    input
        .map(|x: u64| {
            std::thread::sleep(std::time::Duration::from_micros(200));
            x
        })
        .to(output);
}

/// A click, as another tool writes it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Click {
    pub user: u64,
    pub page: String,
}

/// A visit, as the pipeline writes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Visit {
    pub user: u64,
    pub home: bool,
}

#[pipeline]
pub fn visits(clicks: Source<Click>, out: Sink<Visit>) {
    clicks
        .map(|c: Click| Visit {
            user: c.user,
            home: c.page == "/",
        })
        .to(out);
}
