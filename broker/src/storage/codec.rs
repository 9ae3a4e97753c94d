//! Values to bytes and back, at every process edge (file-backed topics, and the bridges):
//! serde with bincode 2 by default, JSON for interoperability with other tools. Every decode
//! is size-limited and refuses trailing bytes; nothing it is given can make it panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest value bincode decodes with the plain [`encode`] / [`decode`] functions.
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
    /// The bytes (or the encoded value) are longer than the limit.
    #[error("{size} bytes is over the limit of {limit}")]
    TooLarge {
        /// Their size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// The wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// bincode 2 (standard configuration: little-endian, variable-length integers).
    #[default]
    Bincode,
    /// JSON (serde_json), readable by any other tool.
    Json,
}

/// A format and a maximum record size, checked before decoding allocates anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// The wire format.
    pub format: Format,
    /// The largest encoded value accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for Codec {
    fn default() -> Self {
        Self::bincode()
    }
}

/// Calls `$body` with `$config` bound to a bincode configuration whose limit is the smallest
/// power of two (from 1 KiB to 64 MiB) at or above `$max`: bincode checks every length it
/// reads against the bytes left under the limit before allocating, so a decode never
/// allocates more than twice the record size limit, whatever a length prefix claims.
macro_rules! with_bincode_limit {
    ($max:expr, |$config:ident| $body:expr) => {{
        let max: usize = $max;
        macro_rules! go {
            ($limit:literal) => {{
                let $config = bincode::config::standard().with_limit::<$limit>();
                $body
            }};
        }
        match max {
            0..=1024 => go!(1024),
            1025..=16384 => go!(16384),
            16385..=262_144 => go!(262_144),
            262_145..=1_048_576 => go!(1_048_576),
            1_048_577..=4_194_304 => go!(4_194_304),
            4_194_305..=16_777_216 => go!(16_777_216),
            _ => go!(67_108_864),
        }
    }};
}

impl Codec {
    /// bincode with a 1 MiB limit.
    pub const fn bincode() -> Self {
        Self {
            format: Format::Bincode,
            max_bytes: 1 << 20,
        }
    }

    /// JSON with a 1 MiB limit.
    pub const fn json() -> Self {
        Self {
            format: Format::Json,
            max_bytes: 1 << 20,
        }
    }

    /// The same format with another limit (at most 64 MiB).
    pub const fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = if max_bytes > 64 << 20 {
            64 << 20
        } else {
            max_bytes
        };
        self
    }

    /// Encodes `value`, appending to `out`; refuses values over the limit.
    pub fn encode<T: Serialize>(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let start = out.len();
        match self.format {
            Format::Bincode => {
                let bytes = with_bincode_limit!(self.max_bytes, |config| {
                    bincode::serde::encode_to_vec(value, config)
                })
                .map_err(|e| CodecError::Encode(e.to_string()))?;
                out.extend_from_slice(&bytes);
            }
            Format::Json => serde_json::to_writer(&mut *out, value)
                .map_err(|e| CodecError::Encode(e.to_string()))?,
        }
        let size = out.len() - start;
        if size > self.max_bytes {
            out.truncate(start);
            return Err(CodecError::TooLarge {
                size,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Decodes a value from exactly `bytes`.
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        if bytes.len() > self.max_bytes {
            return Err(CodecError::TooLarge {
                size: bytes.len(),
                limit: self.max_bytes,
            });
        }
        match self.format {
            Format::Bincode => {
                let (value, used) = with_bincode_limit!(self.max_bytes, |config| {
                    bincode::serde::decode_from_slice(bytes, config)
                })
                .map_err(|e| CodecError::Decode(e.to_string()))?;
                if used != bytes.len() {
                    return Err(CodecError::TrailingBytes(bytes.len() - used));
                }
                Ok(value)
            }
            // serde_json refuses trailing characters itself (other than whitespace).
            Format::Json => {
                serde_json::from_slice(bytes).map_err(|e| CodecError::Decode(e.to_string()))
            }
        }
    }
}

/// Encodes `value` with bincode, appending to `out` (limit [`DECODE_LIMIT`]).
pub fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    Codec::bincode().max_bytes(DECODE_LIMIT).encode(value, out)
}

/// Decodes a bincode value from exactly `bytes` (at most [`DECODE_LIMIT`] long).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Codec::bincode().max_bytes(DECODE_LIMIT).decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Order = (String, u64, Vec<u8>);

    fn order() -> Order {
        ("order".to_owned(), 42, vec![1, 2])
    }

    #[test]
    fn both_formats_round_trip() {
        for codec in [Codec::bincode(), Codec::json()] {
            let mut out = Vec::new();
            codec.encode(&order(), &mut out).unwrap();
            assert_eq!(codec.decode::<Order>(&out).unwrap(), order(), "{codec:?}");
        }
        let mut json = Vec::new();
        Codec::json().encode(&order(), &mut json).unwrap();
        assert_eq!(json, br#"["order",42,[1,2]]"#);
    }

    #[test]
    fn trailing_bytes_and_oversized_payloads_are_refused() {
        let mut out = Vec::new();
        encode(&order(), &mut out).unwrap();
        out.push(0);
        assert!(matches!(
            decode::<Order>(&out),
            Err(CodecError::TrailingBytes(1))
        ));
        let small = Codec::bincode().max_bytes(8);
        let mut big = Vec::new();
        assert!(matches!(
            small.encode(&vec![0u8; 100], &mut big),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(big.is_empty(), "nothing partial is left in the buffer");
        assert!(matches!(
            small.decode::<Vec<u8>>(&[0; 100]),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(Codec::json().decode::<u64>(b"1 2").is_err());
    }

    /// Malformed payloads as in R8: random bytes, truncations, a length prefix claiming 4 GiB
    /// (or just under the limit): every one is an error, none panics or allocates the claim.
    #[test]
    fn malformed_payloads_are_errors_never_panics() {
        let mut good = Vec::new();
        encode(&order(), &mut good).unwrap();
        for cut in 0..good.len() {
            assert!(decode::<Order>(&good[..cut]).is_err(), "truncated at {cut}");
        }
        let claims: [&[u8]; 3] = [
            &[0xfc, 0xff, 0xff, 0xff, 0xff], // a u32 length of 4 GiB
            &[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // a u64 length
            &[0xfc, 0x00, 0x00, 0x10, 0x00], // 1 MiB, over a 1 KiB limit
        ];
        let tight = Codec::bincode().max_bytes(1024);
        for claim in claims {
            assert!(tight.decode::<Vec<u8>>(claim).is_err());
            assert!(tight.decode::<String>(claim).is_err());
        }
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..2_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (seed >> (i % 8 * 8)) as u8).collect();
            let _ = tight.decode::<Order>(&bytes);
            let _ = Codec::json().decode::<Order>(&bytes);
        }
    }
}
