//! Positions of stream entries: every entry id Redis accepts (`ms-seq`, two `u64`s) gets a
//! `u64` position that increases within a partition, so that no entry stalls its partition.
//!
//! Two `u64`s do not fit in one, so the position is the entry id packed as `ms << 20 | seq`
//! when it fits (`ms < 2^43`, about the year 2248, and `seq < 2^20`: every id `XADD *` makes,
//! and most ids other tools choose), and otherwise one more than the position before it in
//! the partition. Entries keep their real ids beside their positions: a commit acknowledges
//! those, never an id computed back from a position.

/// Bits of the sequence number in a packed position.
const SEQ_BITS: u32 = 20;
/// The largest `ms` and `seq` that pack.
const MS_MAX: u64 = (1 << 43) - 1;
const SEQ_MAX: u64 = (1 << SEQ_BITS) - 1;

/// A stream entry id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EntryId {
    /// Milliseconds part (the time of the append when Redis chose the id).
    pub(crate) ms: u64,
    /// Sequence number within the millisecond.
    pub(crate) seq: u64,
}

impl EntryId {
    /// Parses `ms-seq`.
    pub(crate) fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-')?;
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The id packed as `ms << 20 | seq`, each part capped at what fits: ordered like the
    /// ids, and equal to the exact packing for every id that fits.
    fn packed(self) -> u64 {
        self.ms.min(MS_MAX) << SEQ_BITS | self.seq.min(SEQ_MAX)
    }

    /// The append time of an id Redis chose, in nanoseconds since the Unix epoch.
    pub(crate) fn timestamp_nanos(self) -> u64 {
        self.ms.saturating_mul(1_000_000)
    }

    /// The position of this entry, read after an entry at `previous` (if any) in the same
    /// partition: its packed id when that is above `previous`, else `previous + 1`.
    pub(crate) fn position_after(self, previous: Option<u64>) -> u64 {
        match previous {
            Some(previous) => self.packed().max(previous.saturating_add(1)),
            None => self.packed(),
        }
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> EntryId {
        EntryId::parse(text).expect("an entry id")
    }

    #[test]
    fn ids_that_fit_are_packed_exactly() {
        assert_eq!(
            id("1700000000000-7").position_after(None),
            1700000000000 << 20 | 7
        );
        assert_eq!(id("1700000000000-7").to_string(), "1700000000000-7");
        assert_eq!(EntryId::parse("nonsense"), None);
        assert_eq!(EntryId::parse("1-x"), None);
    }

    /// Every id Redis accepts gets a position above the one before, in any partition, from
    /// the smallest id to the largest.
    #[test]
    fn positions_increase_over_any_ids() {
        let ids = [
            "0-1",
            "1-1",
            "1-1048575",
            "1-1048576",
            "1-18446744073709551615",
            "2-0",
            "9000000000000-0",
            "9000000000000-1",
            "9000000000001-0",
            "18446744073709551615-0",
            "18446744073709551615-18446744073709551615",
        ];
        let mut previous = None;
        for text in ids {
            let position = id(text).position_after(previous);
            assert!(
                previous < Some(position),
                "{text}: {previous:?} then {position}"
            );
            previous = Some(position);
        }
        // Back to ids that fit: exact again once the packing is above the last position.
        assert_eq!(
            id("3-0").position_after(Some(id("2-5").position_after(None))),
            3 << 20
        );
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(
            id("1700000000000-0").timestamp_nanos(),
            1_700_000_000_000_000_000
        );
        assert_eq!(id("18446744073709551615-0").timestamp_nanos(), u64::MAX);
    }
}
