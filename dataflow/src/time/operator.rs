//! What the runtime calls on the stateful operators of event time: [`WindowOperator`] for
//! windows, [`Checkpointed`] for everything a checkpoint copies.

use super::firing::WindowResult;
use super::lateness::{Arrival, LateRecord};
use super::timestamp::{Timestamp, Watermark};
use crate::codec::CodecError;

/// Windows over a keyed stream, driven by records and the watermark: [`WindowState`] for
/// windows that never merge (tumbling, hopping), [`SessionState`] for sessions.
///
/// Results go to `emit` as they are due: early ones from [`add`](Self::add) or
/// [`advance`](Self::advance) (as [`EarlyFiring`] asks), final ones from
/// [`advance`](Self::advance), in a deterministic order (by window end, then by when the
/// key entered the window), so a replay of the same calls emits the same results.
///
/// [`WindowState`]: super::WindowState
/// [`SessionState`]: super::SessionState
/// [`EarlyFiring`]: super::EarlyFiring
pub trait WindowOperator<K, T> {
    /// What a window's result carries.
    type Output;

    /// Adds a record of `key` stamped `time`: to every window of it still open, where it may
    /// fire early results. A record too late for all of them comes back, untouched, as a
    /// [`LateRecord`] for the late output.
    fn add<E>(
        &mut self,
        key: K,
        time: Timestamp,
        value: T,
        emit: E,
    ) -> Result<Arrival, LateRecord<(K, T)>>
    where
        E: FnMut(WindowResult<K, Self::Output>);

    /// Moves the watermark to `watermark` (a lower one than the current is ignored): every
    /// window whose end plus the allowed lateness it reaches sends its final result and is
    /// dropped.
    fn advance<E>(&mut self, watermark: Watermark, emit: E)
    where
        E: FnMut(WindowResult<K, Self::Output>);

    /// The watermark the operator stands at.
    fn watermark(&self) -> Watermark;

    /// The open windows, one per key and window: what the state holds.
    fn open_windows(&self) -> usize;

    /// An estimate of the state's size in bytes: the keys, accumulators and index entries
    /// themselves, not what they own on the heap (a `String` key's characters).
    fn state_bytes(&self) -> usize;
}

/// A state a checkpoint copies: saved as bytes, restored into an operator built with the same
/// settings. The signature of `save` is that of the runtime's `Snapshot::save`.
pub trait Checkpointed {
    /// Encodes the whole state into `out`.
    fn save(&self, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Replaces the state with one [`save`](Self::save) wrote; a state that is not of this
    /// operator's types or shape is an error, and leaves the state as it was.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), CodecError>;
}
