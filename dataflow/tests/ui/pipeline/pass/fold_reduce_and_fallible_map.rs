use dataflow::{pipeline, stage, Sink, Source};

#[stage(name = "parse_number")]
fn parse(line: String) -> Result<u64, std::num::ParseIntError> {
    line.trim().parse()
}

#[pipeline]
fn totals(lines: Source<String>, sums: Sink<(u64, u64)>, maxima: Sink<(u64, u64)>) {
    let keyed = lines.map(parse).key_by(|n| n % 10);
    keyed.fold(0u64, |acc, n| acc + n).to(sums);
    keyed.reduce(|a, b| a.max(b)).to(maxima);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A named stage stays callable.
    assert_eq!(parse(" 42 ".to_owned()), Ok(42));
    // The compiled graph knows the function; a running pipeline knows its `#[stage]` name.
    assert!(Totals::graph().nodes.iter().any(|n| n.name == "parse"));
    let running = Totals::builder()
        .lines("lines")
        .sums("sums")
        .maxima("maxima")
        .start()
        .await?;
    assert!(running.graph().nodes.iter().any(|n| n.name == "parse_number"));
    assert!(running.metrics().stage("parse_number").is_some());
    running.shutdown().await?;
    Ok(())
}
