//! A checkpoint as it is kept: the positions of the sources and the state of every task at
//! one epoch, with the identity of the pipeline that took it, framed with a CRC.
//!
//! ```text
//! "DFCKPT01"  magic (8 bytes)
//! u64 LE      length of the body
//! body        bincode of `Checkpoint`
//! u32 LE      CRC-32 (crc32fast) of the body
//! ```

use serde::{Deserialize, Serialize};

use super::error::StateError;
use super::transaction::KeptOutputs;

const MAGIC: &[u8; 8] = b"DFCKPT01";

/// Where a source partition resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SourcePosition {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    /// The first offset not yet processed.
    pub(crate) next_offset: u64,
}

/// The state of one stateful node in the task that reads one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedState {
    pub(crate) node: u32,
    pub(crate) partition: u32,
    pub(crate) bytes: Vec<u8>,
}

/// One complete checkpoint of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// The pipeline's group prefix.
    pub(crate) pipeline: String,
    /// The fingerprint of the graph that took it.
    pub(crate) graph: u64,
    pub(crate) epoch: u64,
    pub(crate) sources: Vec<SourcePosition>,
    pub(crate) states: Vec<SavedState>,
    /// Outputs of an exactly-once pipeline appended once this checkpoint is durable.
    pub(crate) outputs: Vec<KeptOutputs>,
}

impl Checkpoint {
    /// The framed bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .expect("a checkpoint always encodes");
        let mut out = Vec::with_capacity(body.len() + 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out
    }

    /// Checks the frame and the CRC, then decodes; `what` names the bytes in errors.
    pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<Self, StateError> {
        let corrupt = |reason: &str| StateError::Corrupt {
            what: what.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| corrupt("not a checkpoint (bad magic)"))?;
        let (len, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("truncated header"))?;
        let len = u64::from_le_bytes(*len);
        if rest.len() as u64 != len + 4 {
            return Err(corrupt(&format!(
                "the body should be {len} bytes and a CRC, the file holds {}",
                rest.len()
            )));
        }
        let (body, crc) = rest.split_at(len as usize);
        let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
        if crc32fast::hash(body) != crc {
            return Err(corrupt("CRC mismatch"));
        }
        // The CRC matched: these are bytes this crate wrote, so decoding without a limit
        // cannot be made to allocate what the file does not hold.
        let (checkpoint, read) =
            bincode::serde::decode_from_slice::<Self, _>(body, bincode::config::standard())
                .map_err(|e| corrupt(&format!("does not decode: {e}")))?;
        if read != body.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(checkpoint)
    }

    /// Whether it belongs to pipeline `pipeline` with graph `graph`.
    pub(crate) fn check(&self, pipeline: &str, graph: u64, what: &str) -> Result<(), StateError> {
        if self.pipeline != pipeline {
            return Err(StateError::OtherPipeline {
                what: what.to_owned(),
                found: self.pipeline.clone(),
                expected: pipeline.to_owned(),
            });
        }
        if self.graph != graph {
            return Err(StateError::GraphChanged {
                what: what.to_owned(),
                pipeline: pipeline.to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            pipeline: "p".to_owned(),
            graph: 7,
            epoch: 3,
            sources: vec![SourcePosition {
                topic: "in".to_owned(),
                partition: 1,
                next_offset: 40,
            }],
            states: vec![SavedState {
                node: 2,
                partition: 1,
                bytes: vec![1, 2, 3],
            }],
            outputs: vec![KeptOutputs {
                topic: "out".to_owned(),
                partition: 0,
                start: 9,
                records: vec![vec![4, 5]],
            }],
        }
    }

    #[test]
    fn a_checkpoint_round_trips() {
        let bytes = checkpoint().encode();
        assert_eq!(Checkpoint::decode(&bytes, "test").unwrap(), checkpoint());
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let bytes = checkpoint().encode();
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x40;
            assert!(Checkpoint::decode(&flipped, "test").is_err(), "byte {i}");
            assert!(
                Checkpoint::decode(&bytes[..i], "test").is_err(),
                "cut at {i}"
            );
        }
    }

    #[test]
    fn another_pipeline_or_graph_is_refused() {
        let ours = checkpoint();
        assert!(ours.check("p", 7, "t").is_ok());
        assert!(matches!(
            ours.check("q", 7, "t"),
            Err(StateError::OtherPipeline { .. })
        ));
        assert!(matches!(
            ours.check("p", 8, "t"),
            Err(StateError::GraphChanged { .. })
        ));
    }
}
