use dataflow::{pipeline, Sink, Source};

async fn lookup(id: u64) -> String {
    format!("user-{id}")
}

#[pipeline]
fn users(ids: Source<u64>, names: Sink<String>) {
    ids.map(lookup).to(names);
}

fn main() {}
