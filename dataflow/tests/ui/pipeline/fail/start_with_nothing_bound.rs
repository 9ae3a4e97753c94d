use dataflow::{pipeline, Sink, Source};

#[pipeline]
fn copy(input: Source<u32>, out: Sink<u32>) {
    input.to(out);
}

async fn run() {
    let _ = Copy::builder().start().await;
}

fn main() {
    let _ = run();
}
