//! A file-backed topic: records and a consumer group's committed offsets survive a restart.
//! The first run of the "process" writes orders and commits part of them; the second opens
//! the same directory, prints what recovery found, and resumes the group where it stopped.
//!
//! Run with: `cargo run --example durable` (or `-- --dir ./data` to choose the directory).

use std::path::PathBuf;

use broker::storage::{Durability, Storage};
use broker::{Broker, Start, TopicConfig};
use clap::Parser;

/// Writes orders to a file-backed topic, "restarts", and shows what recovery kept.
#[derive(Parser)]
struct Args {
    /// The directory of the topic's files (a fresh one in the temporary directory by
    /// default). It must not hold an `orders` topic already; it is removed at the end.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let Args { dir } = Args::parse();
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dataflow-durable-example-{}", std::process::id()))
    });
    let storage = Storage::dir(&dir).durability(Durability::Always);
    let config = TopicConfig::new().partitions(2);

    // First run: 1000 orders, fsynced on every append (producers share fsyncs).
    {
        let broker = Broker::new();
        let orders = broker.durable_topic::<(u32, String)>("orders", config.clone(), &storage)?;
        let producer = orders.producer();
        for i in 0..1_000u32 {
            let customer = format!("customer-{}", i % 10);
            producer.send_keyed_blocking(customer.as_bytes(), (i, customer.clone()))?;
        }
        let mut billing = orders.group("billing")?.join();
        for _ in 0..600 {
            billing.recv_blocking()?.commit()?;
        }
        println!("first run: wrote 1000 orders, billed 600");
    } // the process "stops" here

    // Second run: same directory.
    let broker = Broker::new();
    let orders = broker.durable_topic::<(u32, String)>("orders", config, &storage)?;
    for (partition, report) in orders.recovery().iter().enumerate() {
        println!(
            "partition {partition}: {} records in {} segment(s) recovered, torn tail cut: {}",
            report.records,
            report.segments,
            report.truncated.is_some()
        );
    }
    let mut billing = orders.group("billing")?.join();
    let mut resumed = 0;
    while let Ok(record) = billing.try_recv() {
        record.commit()?;
        resumed += 1;
    }
    println!("second run: the group resumed and billed the remaining {resumed}");
    let mut replay = orders.consumer(Start::Earliest)?;
    let mut all = 0;
    while replay.try_recv().is_ok() {
        all += 1;
    }
    println!("a replay from offset 0 reads all {all} orders");
    std::fs::remove_dir_all(&dir)?;
    anyhow::ensure!(resumed == 400 && all == 1_000, "unexpected counts");
    Ok(())
}
