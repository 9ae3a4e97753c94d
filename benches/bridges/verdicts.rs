//! The verdicts against the targets of `shared/BENCHMARKS.md`, from the medians over rounds.

use crate::peer::Peer;

/// Medians over rounds of each bridge's throughput overhead over its raw client, in percent.
pub struct Overheads {
    /// X2: the Redis bridge over the raw `redis` client.
    pub redis: f64,
    /// `None` when the Kafka peers did not run.
    pub kafka: Option<f64>,
}

/// Median over rounds of a peer's p99 over the embedded broker's, same round.
pub struct P99Ratio {
    /// The peer over the embedded broker.
    pub peer: Peer,
    /// Measured from the intended send time.
    pub p99: f64,
    /// The same, measured from the moment each send started.
    pub from_send: f64,
}

/// Prints each target of X2 and X3 with the measured figure, met or missed.
pub fn verdicts(overheads: &Overheads, p99: &[P99Ratio]) {
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    let band = |overhead: f64| {
        if overhead <= 10.0 {
            "met (within 10%)"
        } else if overhead <= 25.0 {
            "met at the 25% end, missed at the 10% end"
        } else {
            "MISSED (over 25%)"
        }
    };
    println!("\n### Against the targets (BENCHMARKS.md), medians over rounds\n");
    println!(
        "- X2 bridge throughput overhead over the raw client: {:.1}% (target <= 10-25%): {}",
        overheads.redis,
        band(overheads.redis)
    );
    match overheads.kafka {
        Some(overhead) => println!(
            "- X3 bridge throughput overhead over the raw client: {overhead:.1}% (target <= 10-25%): {}",
            band(overhead)
        ),
        None => println!("- X3 Kafka: not measured (tansu not found)"),
    }
    for r in p99 {
        let (id, target) = if r.peer.is_kafka() {
            ("X3", 1000.0)
        } else {
            ("X2", 100.0)
        };
        println!(
            "- {id} {} p99 / embedded p99: {:.1}x (target >= {target:.0}x): {} (from the send: {:.1}x)",
            r.peer.label(),
            r.p99,
            met(r.p99 >= target),
            r.from_send
        );
    }
}
