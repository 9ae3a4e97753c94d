//! A fan-out / fan-in graph: one stream feeds two branches (fan-out), a `split` routes values
//! by a predicate, `split_result` routes by `Ok` / `Err`, and `merge` joins streams again
//! (fan-in, through an internal topic). Prints the graph as Mermaid and Graphviz DOT.
//!
//! Run with: `cargo run --example fan_out_fan_in`

use clap::Parser;
use dataflow::broker::{Broker, Start, TopicConfig};
use dataflow::{Sink, Source, pipeline};

fn celsius(reading: i64) -> f64 {
    reading as f64 / 10.0
}

fn is_cold(t: &f64) -> bool {
    *t < 5.0
}

fn checked(t: f64) -> Result<f64, String> {
    if t > 60.0 {
        Err(format!("sensor fault: {t} °C"))
    } else {
        Ok(t)
    }
}

#[pipeline]
fn weather(readings: Source<i64>, alerts: Sink<String>, normal: Sink<f64>, archive: Sink<i64>) {
    readings.inspect(|r| debug_assert!(*r > -1_000)).to(archive);
    let temperatures = readings.map(celsius);
    let (cold, rest) = temperatures.split(is_cold);
    let (fine, faults) = rest.split_result(checked);
    fine.to(normal);
    let cold_alerts = cold.map(|t| format!("frost warning: {t} °C"));
    cold_alerts.merge(faults).to(alerts);
}

/// Fan-out, `split`, `split_result` and `merge` on sensor readings; prints the graph as
/// Mermaid and DOT, then the alerts.
#[derive(Parser)]
struct Args {}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    Args::parse();
    println!("{}", Weather::graph().to_mermaid());
    println!("{}", Weather::graph().to_dot());

    let broker = Broker::new();
    let readings = broker.topic::<i64>("readings", TopicConfig::new())?;
    let alerts = broker.topic::<String>("alerts", TopicConfig::new())?;
    let normal = broker.topic::<f64>("normal", TopicConfig::new())?;
    let archive = broker.topic::<i64>("archive", TopicConfig::new())?;
    let running = Weather::builder()
        .readings(readings.clone())
        .alerts(alerts.clone())
        .normal(normal.clone())
        .archive(archive.clone())
        .start()
        .await?;

    let producer = readings.producer();
    for reading in [120, 30, 215, 999, -20, 180] {
        producer.send(reading).await?;
    }
    let mut reader = alerts.consumer(Start::Earliest)?;
    for _ in 0..3 {
        println!("alert: {}", reader.recv().await?.value());
    }
    println!("{}", running.shutdown().await?);
    Ok(())
}
