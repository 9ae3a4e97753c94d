use std::rc::Rc;

use dataflow::{pipeline, Sink, Source};

async fn lookup(pair: (u64, u64)) -> u64 {
    let cache = Rc::new(pair.1);
    tokio::task::yield_now().await;
    *cache
}

#[pipeline]
fn users(ids: Source<u64>, names: Sink<u64>) {
    ids.key_by(|id: &u64| *id % 4).map_async(lookup).to(names);
}

fn main() {}
