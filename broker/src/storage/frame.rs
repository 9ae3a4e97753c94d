//! The on-disk record frame.
//!
//! ```text
//! len: u32 LE   length of everything after `crc`
//! crc: u32 LE   CRC-32 (IEEE) of everything after `crc`
//! offset: u64 LE
//! timestamp: u64 LE   nanoseconds since the UNIX epoch
//! key_len: u32 LE     u32::MAX when there is no key
//! key: [u8; key_len]
//! value: [u8; len - 20 - key_len]
//! ```
//!
//! A reader checks `len` against the record size limit before it allocates or reads anything,
//! then the CRC, so a torn or corrupted frame is detected and never decoded.

/// Bytes before the body: `len` and `crc`.
pub(crate) const HEADER: usize = 8;
/// Fixed part of the body: `offset`, `timestamp`, `key_len`.
const FIXED: usize = 20;
/// The smallest frame: no key, an empty value.
pub(crate) const MIN: usize = HEADER + FIXED;
const NO_KEY: u32 = u32::MAX;

/// A decoded frame, borrowing the buffer it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub(crate) offset: u64,
    pub(crate) timestamp: u64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: &'a [u8],
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the frame says: the tail of a write that did not finish.
    #[error("truncated frame: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The length field is impossible or over the record size limit.
    #[error("frame length {len} is invalid (limit {limit})")]
    BadLength {
        /// The length read.
        len: u64,
        /// The limit.
        limit: usize,
    },
    /// The checksum does not match.
    #[error("frame checksum mismatch")]
    BadChecksum,
    /// The key length points outside the frame.
    #[error("frame key length {key_len} is invalid")]
    BadKey {
        /// The key length read.
        key_len: u32,
    },
}

/// Appends a frame to `out`.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    offset: u64,
    timestamp: u64,
    key: Option<&[u8]>,
    value: &[u8],
) {
    let key_len = key.map_or(0, <[u8]>::len);
    let body = FIXED + key_len + value.len();
    let start = out.len();
    out.extend_from_slice(&(body as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(&key.map_or(NO_KEY, |k| k.len() as u32).to_le_bytes());
    if let Some(key) = key {
        out.extend_from_slice(key);
    }
    out.extend_from_slice(value);
    let crc = crc32fast::hash(&out[start + HEADER..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes the frame at the start of `buf`; returns it and its total size. `max_body` bounds
/// the body length (record size limit plus the fixed fields), checked before anything else.
pub(crate) fn decode(buf: &[u8], max_body: usize) -> Result<(Frame<'_>, usize), FrameError> {
    if buf.len() < HEADER {
        return Err(FrameError::Truncated {
            needed: HEADER,
            available: buf.len(),
        });
    }
    let len = u32_at(buf, 0) as usize;
    if !(FIXED..=max_body).contains(&len) {
        return Err(FrameError::BadLength {
            len: len as u64,
            limit: max_body,
        });
    }
    let total = HEADER + len;
    if buf.len() < total {
        return Err(FrameError::Truncated {
            needed: total,
            available: buf.len(),
        });
    }
    let body = &buf[HEADER..total];
    if crc32fast::hash(body) != u32_at(buf, 4) {
        return Err(FrameError::BadChecksum);
    }
    let key_len = u32_at(body, 16);
    let (key, value_at) = if key_len == NO_KEY {
        (None, FIXED)
    } else if FIXED + key_len as usize <= body.len() {
        (
            Some(&body[FIXED..FIXED + key_len as usize]),
            FIXED + key_len as usize,
        )
    } else {
        return Err(FrameError::BadKey { key_len });
    };
    Ok((
        Frame {
            offset: u64_at(body, 0),
            timestamp: u64_at(body, 8),
            key,
            value: &body[value_at..],
        },
        total,
    ))
}

/// Where the next valid frame with an offset of `min_offset` or more starts, from `from` on in
/// `buf`: how a reader resynchronises after damaged bytes. Each position is checked cheaply
/// first (a length within limits and within `buf`, an offset in range), so the CRC is
/// computed only where a frame is plausible.
pub(crate) fn find(buf: &[u8], from: usize, max_body: usize, min_offset: u64) -> Option<usize> {
    (from..buf.len().saturating_sub(MIN - 1)).find(|&at| {
        let len = u32_at(buf, at) as usize;
        let offset = u64_at(buf, at + HEADER);
        (FIXED..=max_body).contains(&len)
            && at + HEADER + len <= buf.len()
            && offset >= min_offset
            && decode(&buf[at..], max_body).is_ok()
    })
}

/// The largest body a record of at most `max_record` key and value bytes has.
pub(crate) fn max_body(max_record: usize) -> usize {
    FIXED + max_record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_and_without_keys() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, 99, Some(b"k"), b"value");
        encode(&mut buf, 8, 100, None, b"");
        let (first, used) = decode(&buf, 1024).unwrap();
        assert_eq!(
            first,
            Frame {
                offset: 7,
                timestamp: 99,
                key: Some(b"k"),
                value: b"value"
            }
        );
        let (second, rest) = decode(&buf[used..], 1024).unwrap();
        assert_eq!(
            second,
            Frame {
                offset: 8,
                timestamp: 100,
                key: None,
                value: b""
            }
        );
        assert_eq!(used + rest, buf.len());
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, 2, Some(b"key"), b"some value bytes");
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut], 1024).is_err(), "cut at {cut}");
        }
        for at in 0..buf.len() {
            for bit in 0..8 {
                let mut flipped = buf.clone();
                flipped[at] ^= 1 << bit;
                assert!(decode(&flipped, 1024).is_err(), "flip at {at} bit {bit}");
            }
        }
    }

    #[test]
    fn find_resynchronises_on_the_next_valid_frame_after_damage() {
        let mut buf = Vec::new();
        for offset in 0..5 {
            encode(&mut buf, offset, 10 + offset, None, b"some value");
        }
        let size = buf.len() / 5;
        // Damage the second frame: the next valid one is the third.
        buf[size + 12] ^= 0x40;
        assert!(decode(&buf[size..], 1024).is_err());
        assert_eq!(find(&buf, size + 1, 1024, 1), Some(2 * size));
        // Frames before the offset asked for are passed over.
        assert_eq!(find(&buf, 0, 1024, 3), Some(3 * size));
        assert_eq!(find(&buf, 4 * size + 1, 1024, 0), None);
    }

    #[test]
    fn a_huge_length_is_refused_before_reading() {
        let mut buf = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        buf.extend_from_slice(&[0; 32]);
        assert!(matches!(
            decode(&buf, 1024),
            Err(FrameError::BadLength { .. })
        ));
    }
}
