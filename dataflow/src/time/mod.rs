//! Event time: timestamps, watermarks, windows, window aggregates and joins.
//!
//! The library core of event time, with no runtime in it: plain data structures driven by
//! explicit calls (a record, a watermark, an instant), so that they behave the same in a
//! pipeline, in a test driver and in a unit test. `docs/time.md` says how the runtime and
//! `#[pipeline]` drive them.
//!
//! # Event time and watermarks
//!
//! A record's event time is a [`Timestamp`]: milliseconds since the Unix epoch. A
//! [`Watermark`] `w` says that every record stamped before `w` has arrived; a record stamped
//! before the watermark is *late*.
//!
//! Watermarks come from the sources: per partition, a [`BoundedOutOfOrderness`] generator
//! (the largest timestamp seen minus a bound), combined per task by a [`WatermarkTracker`]
//! (the minimum over the inputs, leaving out inputs idle for longer than a timeout), or both
//! at once by [`SourceWatermarks`]. A downstream task combines the watermarks of the tasks
//! that write to it with its own [`WatermarkTracker`]. Watermarks never move backwards.
//!
//! # Windows
//!
//! A [`Window`] is `[start, end)`. [`Tumbling`] and [`Hopping`] windows are aligned to the
//! epoch and never merge; their state is a [`WindowState`]. [`Session`] windows grow and
//! merge per key; their state is a [`SessionState`], whose aggregator must merge
//! ([`SessionAggregator`]). Both are [`WindowOperator`]s: `add` a keyed record with its
//! timestamp, `advance` the watermark, and collect [`WindowResult`]s (key, window, value,
//! and whether it is [`Firing::Final`]).
//!
//! Aggregators: [`Count`], [`Fold`], [`Reduce`], or your own [`Aggregator`].
//!
//! # Lateness
//!
//! A window `[start, end)` closes when the watermark reaches `end + lateness` (the allowed
//! lateness, zero by default): its one final result goes out and its state is dropped. Before
//! that, a record stamped in it still counts, even behind the watermark ([`Arrival::Late`]).
//! A record that counts nowhere is *too late*: the operator hands it back as a
//! [`LateRecord`], for the pipeline's late output. Sessions and joins, whose windows depend
//! on the records, accept records at most `lateness` behind the watermark.
//!
//! Partial results before the final one are optional: [`EarlyFiring`].
//!
//! # Joins
//!
//! [`InnerJoin`] and [`LeftJoin`] join two streams keyed by the same type, pairing records at
//! most a given time apart; [`Table`] keeps the latest value per key of a changelog for
//! stream-table joins.
//!
//! # Checkpoints
//!
//! Every stateful type here is [`Checkpointed`]: `save` encodes its whole state (serde, with
//! the runtime's state codec) and `restore` puts it back into an operator built with the same
//! settings. The watermark an operator stands at is part of its state, so a restored operator
//! refuses the same late records the original would have.

mod aggregate;
mod error;
mod firing;
mod fixed;
mod generator;
mod join;
mod lateness;
mod operator;
mod session;
mod snapshot;
mod source;
mod table;
mod timestamp;
mod tracker;
mod window;

pub use aggregate::{Aggregator, Count, Fold, Reduce, SessionAggregator};
pub use error::TimeError;
pub use firing::{EarlyFiring, Firing, WindowResult};
pub use fixed::WindowState;
pub use generator::BoundedOutOfOrderness;
pub use join::{InnerJoin, LeftJoin};
pub use lateness::{Arrival, LateRecord};
pub use operator::{Checkpointed, WindowOperator};
pub use session::SessionState;
pub use source::SourceWatermarks;
pub use table::Table;
pub use timestamp::{Timestamp, Watermark};
pub use tracker::WatermarkTracker;
pub use window::{Aligned, Hopping, Session, Tumbling, Window, WindowAssigner};

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync + Unpin>() {}

    #[test]
    fn the_states_can_move_to_and_be_shared_with_other_threads() {
        send_sync::<Timestamp>();
        send_sync::<Watermark>();
        send_sync::<BoundedOutOfOrderness>();
        send_sync::<WatermarkTracker>();
        send_sync::<SourceWatermarks>();
        send_sync::<WindowState<String, u64, Count, Tumbling>>();
        send_sync::<WindowState<String, u64, Fold<u64, fn(u64, u64) -> u64>, Hopping>>();
        send_sync::<SessionState<String, u64, Reduce<fn(u64, u64) -> u64>>>();
        send_sync::<InnerJoin<String, u64, String>>();
        send_sync::<LeftJoin<String, u64, String>>();
        send_sync::<Table<String, u64>>();
        send_sync::<WindowResult<String, u64>>();
        send_sync::<LateRecord<(String, u64)>>();
        send_sync::<TimeError>();
    }
}
