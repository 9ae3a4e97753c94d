use dataflow::{pipeline, Sink, Source};

fn lookup(id: u64) -> String {
    format!("user-{id}")
}

#[pipeline]
fn users(ids: Source<u64>, names: Sink<String>) {
    ids.map_async(lookup).to(names);
}

fn main() {}
