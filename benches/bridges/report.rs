//! What the bench prints: a row per run, then medians over rounds with [min, max] and the
//! same-round ratios between peers.

use hdrhistogram::Histogram;

use crate::common::stats::{median, spread, us};
use crate::latency::Latency;
use crate::peer::{PEERS, Peer, index};
use crate::throughput::Throughput;
use crate::verdicts::{Overheads, P99Ratio};
use crate::workload::BATCH;

const QUANTILES: &[(&str, f64)] = &[("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)];

/// `f(run of a, run of b)` for every round, empty if either peer did not run.
fn same_round<R>(runs: &[Vec<R>], a: Peer, b: Peer, f: impl Fn(&R, &R) -> f64) -> Vec<f64> {
    runs[index(a)]
        .iter()
        .zip(&runs[index(b)])
        .map(|(a, b)| f(a, b))
        .collect()
}

/// The heading of the throughput runs' table.
pub fn throughput_heading(records: u64, kafka_records: u64) {
    println!(
        "## Throughput: {records} records ({kafka_records} on Kafka), batches of {BATCH}, read \
         by a group and acknowledged\n"
    );
    println!(
        "| round | peer | records | s | records/s | producer records/s | client CPU ns/rec | server CPU ns/rec | other load (cores) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
}

/// One throughput run's row.
pub fn throughput_row(round: usize, peer: Peer, run: &Throughput) {
    println!(
        "| {round} | {} | {} | {:.3} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
        peer.label(),
        run.records,
        run.seconds,
        run.rate(),
        run.records as f64 / run.producer_seconds,
        run.cpu.client_ns as f64 / run.records as f64,
        run.cpu.server_ns as f64 / run.records as f64,
        run.cpu.others_cores,
    );
}

/// The heading of the latency runs' table.
pub fn latency_heading(rate: u64, seconds: f64, warmup_ms: u64) {
    println!(
        "\n## Latency: 1 record per send at {rate} records/s for {seconds} s (+{warmup_ms} ms \
         warm-up not recorded), open loop, us\n"
    );
    println!(
        "| round | peer | sent | recorded | p50 | p99 | p99.9 | max | p99 from send | send late p99 | other load (cores) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

/// One latency run's row.
pub fn latency_row(round: usize, peer: Peer, run: &Latency) {
    let mut line = format!(
        "| {round} | {} | {} | {} |",
        peer.label(),
        run.sent,
        run.hist.len()
    );
    for (_, q) in QUANTILES {
        line.push_str(&format!(" {} |", us(run.hist.value_at_quantile(*q))));
    }
    line.push_str(&format!(
        " {} | {} | {} | {:.2} |",
        us(run.hist.max()),
        us(run.from_send.value_at_quantile(0.99)),
        us(run.late.value_at_quantile(0.99)),
        run.cpu.others_cores
    ));
    println!("{line}");
}

/// Prints the throughput medians and same-round ratios; returns the bridges' overheads.
pub fn summarize_throughput(runs: &[Vec<Throughput>]) -> Overheads {
    println!("\n### Throughput: median [min, max] over rounds\n");
    println!(
        "| peer | records/run | records/s | producer records/s | client CPU ns/rec | server CPU ns/rec | other load (cores) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (peer, runs) in PEERS.iter().zip(runs) {
        if runs.is_empty() {
            continue;
        }
        let rates: Vec<f64> = runs.iter().map(Throughput::rate).collect();
        let producer: Vec<f64> = runs
            .iter()
            .map(|r| r.records as f64 / r.producer_seconds)
            .collect();
        let client: Vec<f64> = runs
            .iter()
            .map(|r| r.cpu.client_ns as f64 / r.records as f64)
            .collect();
        let server: Vec<f64> = runs
            .iter()
            .map(|r| r.cpu.server_ns as f64 / r.records as f64)
            .collect();
        let others: Vec<f64> = runs.iter().map(|r| r.cpu.others_cores).collect();
        let int = |v: f64| format!("{v:.0}");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            peer.label(),
            runs[0].records,
            spread(&rates, int),
            spread(&producer, int),
            spread(&client, int),
            spread(&server, int),
            spread(&others, |v| format!("{v:.2}")),
        );
    }
    println!("\nSame-round ratios, median [min, max]:\n");
    let mut overheads = Vec::new();
    for (bridge, raw, name) in [
        (Peer::Bridge, Peer::Raw, "redis"),
        (Peer::KafkaBridge, Peer::KafkaRaw, "kafka"),
    ] {
        let ratio = same_round(runs, bridge, raw, |a, b| a.rate() / b.rate());
        if ratio.is_empty() {
            overheads.push(None);
            continue;
        }
        let overhead: Vec<f64> = ratio.iter().map(|r| (1.0 / r - 1.0) * 100.0).collect();
        println!(
            "- {name} bridge / raw records/s: {} (overhead, raw rate / bridge rate - 1: {})",
            spread(&ratio, |v| format!("{v:.2}")),
            spread(&overhead, |v| format!("{v:.1}%")),
        );
        overheads.push(Some(median(&overhead)));
    }
    for raw in [Peer::Raw, Peer::KafkaRaw] {
        let ratio = same_round(runs, Peer::Mem, raw, |a, b| a.rate() / b.rate());
        if !ratio.is_empty() {
            println!(
                "- mem / {} records/s: {}",
                raw.label(),
                spread(&ratio, |v| format!("{v:.1}x"))
            );
        }
    }
    Overheads {
        redis: overheads[0].expect("the Redis peers always run"),
        kafka: overheads[1],
    }
}

/// How long the Kafka runs took to join their groups and read the prime record (not timed).
pub fn summarize_joins(throughputs: &[Vec<Throughput>], latencies: &[Vec<Latency>]) {
    let mut lines = Vec::new();
    for peer in PEERS.iter().filter(|p| p.is_kafka()) {
        let joins: Vec<f64> = throughputs[index(*peer)]
            .iter()
            .filter_map(|r| r.joined)
            .chain(latencies[index(*peer)].iter().filter_map(|r| r.joined))
            .map(|d| d.as_secs_f64())
            .collect();
        if !joins.is_empty() {
            lines.push(format!(
                "- {}: {} s over {} runs",
                peer.label(),
                spread(&joins, |v| format!("{v:.2}")),
                joins.len()
            ));
        }
    }
    if !lines.is_empty() {
        println!(
            "\n### Kafka: group join and prime record, before each run's clock, median [min, max]\n"
        );
        println!("{}", lines.join("\n"));
    }
}

/// Prints the latency medians and same-round ratios; returns each peer's p99 over the
/// embedded broker's.
pub fn summarize_latency(rate: u64, runs: &[Vec<Latency>]) -> Vec<P99Ratio> {
    println!("\n### Latency at {rate} records/s: median [min, max] over rounds, us\n");
    println!(
        "| peer | recorded/round | p50 | p99 | p99.9 | max (largest) | p99 from send | send late p99 | other load (cores) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (peer, runs) in PEERS.iter().zip(runs) {
        if runs.is_empty() {
            continue;
        }
        let counts: Vec<f64> = runs.iter().map(|r| r.hist.len() as f64).collect();
        let mut line = format!("| {} | {:.0} |", peer.label(), median(&counts));
        for (_, q) in QUANTILES {
            let v: Vec<f64> = runs
                .iter()
                .map(|r| r.hist.value_at_quantile(*q) as f64)
                .collect();
            line.push_str(&format!(" {} |", spread(&v, |ns| us(ns as u64))));
        }
        let max = runs.iter().map(|r| r.hist.max()).max().unwrap_or(0);
        let others: Vec<f64> = runs.iter().map(|r| r.cpu.others_cores).collect();
        let late: Vec<f64> = runs
            .iter()
            .map(|r| r.late.value_at_quantile(0.99) as f64)
            .collect();
        let from_send: Vec<f64> = runs
            .iter()
            .map(|r| r.from_send.value_at_quantile(0.99) as f64)
            .collect();
        line.push_str(&format!(
            " {} | {} | {} | {} |",
            us(max),
            spread(&from_send, |ns| us(ns as u64)),
            spread(&late, |ns| us(ns as u64)),
            spread(&others, |v| format!("{v:.2}"))
        ));
        println!("{line}");
    }
    let ratio_of = |pick: fn(&Latency) -> &Histogram<u64>, a: Peer, b: Peer, q: f64| -> Vec<f64> {
        same_round(runs, a, b, |a, b| {
            pick(a).value_at_quantile(q) as f64 / pick(b).value_at_quantile(q).max(1) as f64
        })
    };
    let ratio = |a, b, q| ratio_of(|r| &r.hist, a, b, q);
    let ratio_from_send = |a, b, q| ratio_of(|r| &r.from_send, a, b, q);
    println!("\nSame-round ratios, median [min, max]:\n");
    println!("| ratio | p50 | p99 | p99.9 | p99 from send |");
    println!("|---|---:|---:|---:|---:|");
    for (a, b) in [
        (Peer::Bridge, Peer::Mem),
        (Peer::Raw, Peer::Mem),
        (Peer::Bridge, Peer::Raw),
        (Peer::KafkaBridge, Peer::Mem),
        (Peer::KafkaRaw, Peer::Mem),
        (Peer::KafkaBridge, Peer::KafkaRaw),
    ] {
        if runs[index(a)].is_empty() || runs[index(b)].is_empty() {
            continue;
        }
        let mut line = format!("| {} / {} |", a.short(), b.short());
        for (_, q) in QUANTILES {
            line.push_str(&format!(
                " {} |",
                spread(&ratio(a, b, *q), |v| format!("{v:.2}x"))
            ));
        }
        line.push_str(&format!(
            " {} |",
            spread(&ratio_from_send(a, b, 0.99), |v| format!("{v:.2}x"))
        ));
        println!("{line}");
    }
    PEERS
        .iter()
        .filter(|p| **p != Peer::Mem && !runs[index(**p)].is_empty())
        .map(|&peer| P99Ratio {
            peer,
            p99: median(&ratio(peer, Peer::Mem, 0.99)),
            from_send: median(&ratio_from_send(peer, Peer::Mem, 0.99)),
        })
        .collect()
}
