//! Values to bytes and back, for file-backed topics (and later for bridges): serde with
//! bincode 2, size-limited, trailing bytes refused.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest value bincode decodes, whatever a length prefix inside it claims.
pub const DECODE_LIMIT: usize = 16 << 20;

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Encoding failed.
    #[error("cannot encode value: {0}")]
    Encode(String),
    /// The bytes are not a value of this type.
    #[error("cannot decode value: {0}")]
    Decode(String),
    /// The value was decoded but bytes were left over.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The bytes are longer than the limit.
    #[error("{size} bytes is over the limit of {limit}")]
    TooLarge {
        /// Their size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Encodes `value`, appending to `out`.
pub fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let bytes = bincode::serde::encode_to_vec(value, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// Decodes a value from exactly `bytes` (at most [`DECODE_LIMIT`] long).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > DECODE_LIMIT {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit: DECODE_LIMIT,
        });
    }
    let (value, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_bad_bytes_are_refused() {
        let mut out = Vec::new();
        encode(&("order", 42u64, vec![1u8, 2]), &mut out).unwrap();
        let back: (String, u64, Vec<u8>) = decode(&out).unwrap();
        assert_eq!(back, ("order".to_owned(), 42, vec![1, 2]));
        out.push(0);
        assert!(matches!(
            decode::<(String, u64, Vec<u8>)>(&out),
            Err(CodecError::TrailingBytes(1))
        ));
        // A length prefix claiming 4 GiB is refused without allocating it.
        let claim = [0xfc, 0xff, 0xff, 0xff, 0xff];
        assert!(decode::<Vec<u8>>(&claim).is_err());
    }
}
