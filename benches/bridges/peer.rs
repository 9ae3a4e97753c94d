//! The peers, in the order of the first round, and their labels.

/// Peers, in the order of the first round.
pub const PEERS: [Peer; 5] = [
    Peer::Mem,
    Peer::Bridge,
    Peer::Raw,
    Peer::KafkaBridge,
    Peer::KafkaRaw,
];

/// A client doing the work of a run: the embedded broker, a bridge, or a raw client.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Peer {
    /// The embedded broker through `Connection` (X1).
    Mem,
    /// The Redis Streams bridge through `Connection` (X2).
    Bridge,
    /// The raw `redis` client (X2's peer).
    Raw,
    /// The Kafka bridge through `Connection`, on a local tansu (X3).
    KafkaBridge,
    /// The raw `rdkafka` client (X3's peer).
    KafkaRaw,
}

impl Peer {
    /// The name in the tables.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Mem => "mem:// (X1)",
            Peer::Bridge => "redis bridge (X2)",
            Peer::Raw => "redis raw client",
            Peer::KafkaBridge => "kafka bridge (X3)",
            Peer::KafkaRaw => "kafka raw client",
        }
    }

    /// A short name, for topic names and ratio rows.
    pub fn short(self) -> &'static str {
        match self {
            Peer::Mem => "mem",
            Peer::Bridge => "bridge",
            Peer::Raw => "raw",
            Peer::KafkaBridge => "kbridge",
            Peer::KafkaRaw => "kraw",
        }
    }

    /// Whether the peer needs the Kafka broker.
    pub fn is_kafka(self) -> bool {
        matches!(self, Peer::KafkaBridge | Peer::KafkaRaw)
    }
}

/// The position of `peer` in [`PEERS`] (and in every per-peer list of runs).
pub fn index(peer: Peer) -> usize {
    PEERS.iter().position(|p| *p == peer).expect("peer")
}
