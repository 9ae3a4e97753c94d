//! How the states of this module are saved into a checkpoint and restored from it: serde
//! views of their data, encoded with the codec (and limits) of the runtime's `KeyedState`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{Codec, CodecError};

/// Encodes `saved` into `out` (bincode, no size limit: it is our own state).
pub(crate) fn save<T: Serialize>(saved: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    Codec::bincode().max_bytes(usize::MAX).encode(saved, out)
}

/// Decodes what [`save`] wrote, refusing trailing bytes.
pub(crate) fn restore<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Codec::bincode()
        .max_bytes(bytes.len().max(1 << 20))
        .decode(bytes)
}

/// A restored state that does not fit the operator restoring it.
pub(crate) fn mismatch(what: String) -> CodecError {
    CodecError::Decode(what)
}
