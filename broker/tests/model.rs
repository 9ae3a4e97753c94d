//! R15: random produce / read / seek / commit / join / leave sequences against a reference
//! model: a `Vec` per partition, a position per reader, committed offsets per partition.

use std::collections::BTreeMap;

use broker::{Broker, Consumer, GroupMember, Start, TopicConfig, TryRecvError};
use proptest::prelude::*;

const PARTITIONS: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    Produce { partition: u32, value: u32 },
    ProduceBatch { partition: u32, count: u8 },
    Read { reader: usize },
    Seek { reader: usize, offset: u64 },
    SeekEarliest { reader: usize },
    SeekLatest { reader: usize },
    Join,
    Leave { member: usize },
    GroupRead { member: usize },
    Commit { member: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PARTITIONS, any::<u32>()).prop_map(|(partition, value)| Op::Produce { partition, value }),
        1 => (0..PARTITIONS, 1u8..20).prop_map(|(partition, count)| Op::ProduceBatch { partition, count }),
        4 => (0usize..3).prop_map(|reader| Op::Read { reader }),
        1 => (0usize..3, 0u64..40).prop_map(|(reader, offset)| Op::Seek { reader, offset }),
        1 => (0usize..3).prop_map(|reader| Op::SeekEarliest { reader }),
        1 => (0usize..3).prop_map(|reader| Op::SeekLatest { reader }),
        1 => Just(Op::Join),
        1 => (0usize..4).prop_map(|member| Op::Leave { member }),
        4 => (0usize..4).prop_map(|member| Op::GroupRead { member }),
        2 => (0usize..4).prop_map(|member| Op::Commit { member }),
    ]
}

/// The model of one group member: its read position in each partition it owns.
struct ModelMember {
    real: GroupMember<u32>,
    positions: BTreeMap<u32, u64>,
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let topic = Broker::new()
        .topic::<u32>("m", TopicConfig::new().partitions(PARTITIONS).block_size(4))
        .unwrap();
    let group = topic.group("g").unwrap();
    let producer = topic.producer();
    let mut log: Vec<Vec<u32>> = vec![Vec::new(); PARTITIONS as usize];
    // Reader r reads partition r, independently.
    let mut readers: Vec<(Consumer<u32>, u64)> = (0..3)
        .map(|r| (topic.partition_consumer(r, Start::Earliest).unwrap(), 0))
        .collect();
    let mut committed = vec![0u64; PARTITIONS as usize];
    let mut members: Vec<ModelMember> = Vec::new();
    let mut next_value = 0u32;

    for op in ops {
        match op {
            Op::Produce { partition, value } => {
                let at = producer.send_to_blocking(partition, value).unwrap();
                prop_assert_eq!(at.offset, log[partition as usize].len() as u64);
                log[partition as usize].push(value);
            }
            Op::ProduceBatch { partition, count } => {
                let values: Vec<u32> = (0..u32::from(count)).map(|i| next_value + i).collect();
                next_value += u32::from(count);
                let last = producer
                    .send_batch_blocking(partition, values.clone())
                    .unwrap();
                log[partition as usize].extend(values);
                prop_assert_eq!(
                    last.unwrap().offset,
                    log[partition as usize].len() as u64 - 1
                );
            }
            Op::Read { reader } => {
                let (consumer, pos) = &mut readers[reader];
                let part = &log[reader];
                match consumer.try_recv() {
                    Ok(record) => {
                        prop_assert!((*pos as usize) < part.len());
                        prop_assert_eq!(record.offset(), *pos);
                        prop_assert_eq!(*record.value(), part[*pos as usize]);
                        *pos += 1;
                    }
                    Err(TryRecvError::Empty) => prop_assert_eq!(*pos as usize, part.len()),
                    Err(other) => return Err(TestCaseError::fail(format!("{other}"))),
                }
            }
            Op::Seek { reader, offset } => {
                let (consumer, pos) = &mut readers[reader];
                let result = consumer.seek(Start::Offset(offset));
                if offset as usize <= log[reader].len() {
                    prop_assert!(result.is_ok());
                    *pos = offset;
                } else {
                    prop_assert!(result.is_err());
                }
                prop_assert_eq!(consumer.position(reader as u32), Some(*pos));
            }
            Op::SeekEarliest { reader } => {
                readers[reader].0.seek(Start::Earliest).unwrap();
                readers[reader].1 = 0;
            }
            Op::SeekLatest { reader } => {
                readers[reader].0.seek(Start::Latest).unwrap();
                readers[reader].1 = log[reader].len() as u64;
            }
            Op::Join => {
                if members.len() < 4 {
                    members.push(ModelMember {
                        real: group.join(),
                        positions: BTreeMap::new(),
                    });
                }
            }
            Op::Leave { member } => {
                if member < members.len() {
                    members.remove(member);
                }
            }
            Op::GroupRead { member } => {
                if member >= members.len() {
                    continue;
                }
                let m = &mut members[member];
                let result = m
                    .real
                    .try_recv()
                    .map(|r| (r.partition(), r.offset(), *r.value()));
                // The member adopted the current assignment during the read: partitions it
                // gained start at the committed offset, partitions it lost are forgotten.
                let assignment = m.real.assignment();
                m.positions.retain(|p, _| assignment.contains(p));
                for &p in &assignment {
                    m.positions.entry(p).or_insert(committed[p as usize]);
                }
                match result {
                    Ok((partition, offset, value)) => {
                        let pos = m.positions.get_mut(&partition);
                        prop_assert!(pos.is_some(), "read from a partition it does not own");
                        let pos = pos.unwrap();
                        prop_assert_eq!(offset, *pos);
                        prop_assert_eq!(value, log[partition as usize][offset as usize]);
                        *pos += 1;
                    }
                    Err(TryRecvError::Empty) => {
                        for (&p, &pos) in &m.positions {
                            prop_assert_eq!(pos as usize, log[p as usize].len());
                        }
                    }
                    Err(other) => return Err(TestCaseError::fail(format!("{other}"))),
                }
            }
            Op::Commit { member } => {
                if member >= members.len() {
                    continue;
                }
                let m = &mut members[member];
                m.real.refresh();
                let assignment = m.real.assignment();
                m.positions.retain(|p, _| assignment.contains(p));
                for &p in &assignment {
                    m.positions.entry(p).or_insert(committed[p as usize]);
                }
                for (&p, &pos) in &m.positions {
                    m.real.commit_offset(p, pos).unwrap();
                    committed[p as usize] = pos;
                }
            }
        }
        // Invariants after every step.
        for p in 0..PARTITIONS {
            prop_assert_eq!(group.committed(p), Some(committed[p as usize]));
        }
        prop_assert_eq!(
            topic.end_offsets(),
            log.iter().map(|l| l.len() as u64).collect::<Vec<_>>()
        );
        let mut owned: Vec<u32> = Vec::new();
        for m in &mut members {
            m.real.refresh();
            owned.extend(m.real.assignment());
        }
        owned.sort_unstable();
        if members.is_empty() {
            prop_assert!(owned.is_empty());
        } else {
            prop_assert_eq!(
                owned,
                (0..PARTITIONS).collect::<Vec<_>>(),
                "one owner per partition"
            );
        }
        // `refresh` may have moved partitions: keep the model in step.
        for m in &mut members {
            let assignment = m.real.assignment();
            m.positions.retain(|p, _| assignment.contains(p));
            for &p in &assignment {
                m.positions.entry(p).or_insert(committed[p as usize]);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn log_groups_and_readers_match_the_reference_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
