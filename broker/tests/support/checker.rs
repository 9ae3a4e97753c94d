//! A Jepsen-style queue checker (see RELIABILITY.md): producers write unique
//! `(producer, seq)` values and record where each was acknowledged; readers record what they
//! read, in order; the checker counts each anomaly per partition.

use std::collections::{BTreeMap, HashMap};

/// A unique value: (producer id, sequence number).
pub type Value = (u32, u64);

/// What a run observed.
#[derive(Debug, Default)]
pub struct History {
    /// Acknowledged sends: value -> (partition, offset).
    pub acked: HashMap<Value, (u32, u64)>,
    /// Every read, in order, per reader: (partition, offset, value).
    pub reads: Vec<Vec<(u32, u64, Value)>>,
    /// Skips reported by each reader through `Lagged`: partition -> total skipped.
    pub lagged: Vec<BTreeMap<u32, u64>>,
}

/// Anomaly counts; a clean run has all zero.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Anomalies {
    /// Acknowledged, never read, although later offsets of its partition were read.
    pub lost: usize,
    /// One value read at two different offsets.
    pub duplicate: usize,
    /// One offset read with two different values, or with a value acknowledged elsewhere.
    pub inconsistent_offsets: usize,
    /// A reader went backwards, or jumped over offsets not covered by a `Lagged` report.
    pub nonmonotonic: usize,
    /// Acknowledged but not read by the end of the run.
    pub unseen: usize,
}

impl History {
    /// Checks a history where the readers together should read every acknowledged record
    /// (a consumer group, or one reader per partition).
    pub fn check(&self) -> Anomalies {
        let mut anomalies = Anomalies::default();
        let mut at_offset: HashMap<(u32, u64), Value> = HashMap::new();
        let mut offsets_of: HashMap<Value, (u32, u64)> = HashMap::new();
        let mut highest_read: HashMap<u32, u64> = HashMap::new();
        for (reader, reads) in self.reads.iter().enumerate() {
            let mut last: HashMap<u32, u64> = HashMap::new();
            for &(partition, offset, value) in reads {
                if let Some(&prev) = last.get(&partition) {
                    let allowed_gap = self
                        .lagged
                        .get(reader)
                        .and_then(|l| l.get(&partition))
                        .copied()
                        .unwrap_or(0);
                    if offset <= prev || offset > prev + 1 + allowed_gap {
                        anomalies.nonmonotonic += 1;
                    }
                }
                last.insert(partition, offset);
                let high = highest_read.entry(partition).or_insert(offset);
                *high = (*high).max(offset);
                match at_offset.get(&(partition, offset)) {
                    Some(&seen) if seen != value => anomalies.inconsistent_offsets += 1,
                    Some(_) => {}
                    None => {
                        at_offset.insert((partition, offset), value);
                    }
                }
                if self
                    .acked
                    .get(&value)
                    .is_some_and(|&ack| ack != (partition, offset))
                {
                    anomalies.inconsistent_offsets += 1;
                }
                match offsets_of.get(&value) {
                    Some(&seen) if seen != (partition, offset) => anomalies.duplicate += 1,
                    _ => {
                        offsets_of.insert(value, (partition, offset));
                    }
                }
            }
        }
        for (value, &(partition, offset)) in &self.acked {
            if offsets_of.contains_key(value) {
                continue;
            }
            if highest_read
                .get(&partition)
                .is_some_and(|&high| high > offset)
            {
                anomalies.lost += 1;
            } else {
                anomalies.unseen += 1;
            }
        }
        anomalies
    }

    /// Reads per reader, counting a value read twice by the same reader only once.
    pub fn received_by(&self, reader: usize) -> u64 {
        self.reads[reader].len() as u64
    }

    /// Total skipped according to `Lagged` reports of a reader.
    pub fn skipped_by(&self, reader: usize) -> u64 {
        self.lagged[reader].values().sum()
    }
}
