use dataflow::{pipeline, Sink, Source};

async fn lookup(id: u64) -> Result<String, String> {
    Ok(format!("user-{id}"))
}

#[pipeline]
fn users(ids: Source<u64>, names: Sink<String>) {
    ids.map_async(lookup, 32).to(names);
}

fn main() {
    assert!(Users::graph().to_mermaid().contains("lookup: map_async"));
}
