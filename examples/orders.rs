//! The embedded broker on its own: a keyed order stream in 4 partitions, a consumer group of
//! two members sharing them and committing as they go, and an independent reader replaying
//! the whole log from offset 0.
//!
//! Run with: `cargo run --release --example orders` (or `-- --orders 1000000`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use broker::{Broker, Start, TopicConfig};
use clap::Parser;

#[derive(Debug, Clone)]
struct Order {
    customer: u32,
    cents: u64,
}

/// Keyed orders in 4 partitions, a two-member consumer group, and a replay from offset 0.
#[derive(Parser)]
struct Args {
    /// How many orders to send.
    #[arg(long, default_value_t = 200_000)]
    orders: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let Args { orders: total } = Args::parse();
    let broker = Broker::new();
    let orders = broker.topic::<Order>("orders", TopicConfig::new().partitions(4))?;
    let billing = orders.group("billing")?;

    // Two members of one group: each owns two partitions.
    let members: Vec<_> = (0..2)
        .map(|id| {
            let mut member = billing.join();
            tokio::spawn(async move {
                let (mut count, mut cents) = (0u64, 0u64);
                let mut uncommitted = std::collections::BTreeMap::new();
                // The partitions this member read from. Its assignment changes as the other
                // member leaves, so it is not what it owned while consuming.
                let mut read_from = BTreeSet::new();
                loop {
                    match tokio::time::timeout(Duration::from_millis(200), member.recv()).await {
                        Ok(Ok(record)) => {
                            count += 1;
                            cents += record.cents;
                            uncommitted.insert(record.partition(), record.position());
                            read_from.insert(record.partition());
                            if count % 1_000 == 0 {
                                record.commit()?;
                            }
                        }
                        Ok(Err(err)) => return Err(anyhow::Error::from(err)),
                        Err(_idle) => break,
                    }
                }
                // Commit what was processed before leaving, or the next owner reads it again
                // (at-least-once).
                for position in uncommitted.into_values() {
                    member.commit(position)?;
                }
                println!("member {id}: {count} orders from partitions {read_from:?}");
                anyhow::Ok((count, cents))
            })
        })
        .collect();

    let started = Instant::now();
    let producer = orders.producer();
    for i in 0..total {
        let customer = (i % 1_000) as u32;
        let order = Order {
            customer,
            cents: 100 + i % 900,
        };
        producer.send_keyed(&customer.to_be_bytes(), order).await?;
    }
    let produced = started.elapsed();

    let (mut count, mut cents) = (0, 0);
    for member in members {
        let (c, s) = member.await??;
        count += c;
        cents += s;
    }
    println!(
        "produced {total} keyed orders in {produced:?} ({:.1} M records/s)",
        total as f64 / produced.as_secs_f64() / 1e6
    );
    println!(
        "the group consumed {count} orders worth {:.2}",
        cents as f64 / 100.0
    );
    println!(
        "committed offsets: {:?}",
        (0..4).map(|p| billing.committed(p)).collect::<Vec<_>>()
    );

    // Replay: an independent reader from offset 0 sees the whole log again.
    let mut replay = orders.consumer(Start::Earliest)?;
    let started = Instant::now();
    let mut replayed = 0;
    while let Ok(record) = replay.try_recv() {
        debug_assert!(record.customer < 1_000);
        replayed += 1;
    }
    println!("replayed {replayed} records in {:?}", started.elapsed());
    anyhow::ensure!(count == total && replayed == total, "records went missing");
    Ok(())
}
