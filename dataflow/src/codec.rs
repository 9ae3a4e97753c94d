//! Decoding stages for byte payloads that come from outside (files, other tools, bridges):
//! use them with `map`, and a payload that does not decode goes to the dead-letter output
//! with the codec's error, never crashing the pipeline.
//!
//! ```
//! use dataflow::{codec, pipeline, Sink, Source};
//!
//! #[derive(serde::Deserialize, Clone, Debug)]
//! struct Click {
//!     user: u64,
//! }
//!
//! #[pipeline]
//! fn clicks(raw: Source<Vec<u8>>, users: Sink<u64>) {
//!     raw.map(codec::json::<Click>).map(|c: Click| c.user).to(users);
//! }
//! # fn main() {}
//! ```

pub use broker::storage::codec::{Codec, CodecError, Format};
use serde::de::DeserializeOwned;

/// Decodes a bincode payload (at most 1 MiB; see [`Codec`] for other limits).
pub fn bincode<T: DeserializeOwned>(bytes: Vec<u8>) -> Result<T, CodecError> {
    Codec::bincode().decode(&bytes)
}

/// Decodes a JSON payload (at most 1 MiB).
pub fn json<T: DeserializeOwned>(bytes: Vec<u8>) -> Result<T, CodecError> {
    Codec::json().decode(&bytes)
}
