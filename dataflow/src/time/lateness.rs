//! What a record's timestamp says about it once the watermark has moved on: on time, late but
//! still counted, or too late (and then handed back for the late output).

use serde::{Deserialize, Serialize};

use super::timestamp::{Timestamp, Watermark};

/// How a record that was accepted stood against the watermark.
///
/// A record that is not accepted is *too late*: the operator hands it back as a
/// [`LateRecord`] instead, for the pipeline's late output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arrival {
    /// Stamped at or after the watermark.
    OnTime,
    /// Stamped before the watermark, but within the allowed lateness: it updated windows (or
    /// join buffers) that were still open.
    Late,
}

impl Arrival {
    pub(crate) fn of(time: Timestamp, watermark: Watermark) -> Self {
        if watermark.is_behind(time) {
            Arrival::Late
        } else {
            Arrival::OnTime
        }
    }
}

/// A record that arrived too late to count anywhere: what the late output of a pipeline
/// carries (never dropped silently).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LateRecord<T> {
    /// The record's event time.
    pub timestamp: Timestamp,
    /// The watermark of the operator that refused it, when it refused it.
    pub watermark: Watermark,
    /// The record (for keyed operators, `(key, value)`).
    pub record: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_late_only_when_stamped_before_the_watermark() {
        let w = Watermark::new(Timestamp::from_millis(10));
        assert_eq!(Arrival::of(Timestamp::from_millis(10), w), Arrival::OnTime);
        assert_eq!(Arrival::of(Timestamp::from_millis(9), w), Arrival::Late);
    }
}
