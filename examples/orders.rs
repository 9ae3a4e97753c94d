//! The embedded broker on its own: a keyed order stream in 4 partitions, a consumer group of
//! two members sharing them and committing as they go, and an independent reader replaying
//! the whole log from offset 0.
//!
//! Run with: `cargo run --release --example orders`

use std::time::{Duration, Instant};

use broker::{Broker, Start, TopicConfig};

#[derive(Debug, Clone)]
struct Order {
    customer: u32,
    cents: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    const ORDERS: u64 = 200_000;
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
                loop {
                    match tokio::time::timeout(Duration::from_millis(200), member.recv()).await {
                        Ok(Ok(record)) => {
                            count += 1;
                            cents += record.cents;
                            uncommitted.insert(record.partition(), record.position());
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
                println!(
                    "member {id}: {count} orders, {} partitions",
                    member.assignment().len()
                );
                anyhow::Ok((count, cents))
            })
        })
        .collect();

    let started = Instant::now();
    let producer = orders.producer();
    for i in 0..ORDERS {
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
        "produced {ORDERS} keyed orders in {produced:?} ({:.1} M records/s)",
        ORDERS as f64 / produced.as_secs_f64() / 1e6
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
    anyhow::ensure!(
        count == ORDERS && replayed == ORDERS,
        "records went missing"
    );
    Ok(())
}
