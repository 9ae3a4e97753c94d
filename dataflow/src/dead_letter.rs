//! The dead-letter output: records a stage could not process, with enough context to replay
//! them.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use broker::Position;
use broker::storage::codec::{Codec, CodecError, Format};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A record that a stage rejected (`Err`), panicked on, or that could not be decoded.
///
/// It carries the *input record of the segment* where it failed (the source record, or the
/// record of the internal topic for stages after a repartition), so it can be replayed.
#[derive(Clone)]
pub struct DeadLetter {
    /// The pipeline's name.
    pub pipeline: &'static str,
    /// The stage that failed.
    pub stage: &'static str,
    /// The error's `Display`, or the panic message.
    pub error: String,
    /// Whether the stage panicked (rather than returning `Err`).
    pub panicked: bool,
    /// The topic the record was read from.
    pub topic: String,
    /// Its partition and offset there.
    pub position: Position,
    /// The backend's own name for its place, when it is not the offset (Redis: the entry id).
    pub id: Option<String>,
    /// The record's value, as read; see [`DeadLetter::value`].
    pub value: Arc<dyn Any + Send + Sync>,
    /// The value's type name.
    pub value_type: &'static str,
}

impl DeadLetter {
    /// The value, if it is a `T`.
    pub fn value<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("pipeline", &self.pipeline)
            .field("stage", &self.stage)
            .field("error", &self.error)
            .field("panicked", &self.panicked)
            .field("topic", &self.topic)
            .field("position", &self.position)
            .field("value_type", &self.value_type)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Summary {
            pipeline: self.pipeline,
            stage: self.stage,
            panicked: self.panicked,
            topic: &self.topic,
            partition: self.position.partition,
            offset: self.position.offset,
            id: self.id.as_deref(),
            error: &self.error,
        }
        .fmt(f)
    }
}

/// The one-line form both kinds of dead letter print.
struct Summary<'a> {
    pipeline: &'a str,
    stage: &'a str,
    panicked: bool,
    topic: &'a str,
    partition: u32,
    offset: u64,
    /// Shown instead of the offset when the backend names places its own way.
    id: Option<&'a str>,
    error: &'a str,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stage `{}` of pipeline `{}` {} on {}[{}]@",
            self.stage,
            self.pipeline,
            if self.panicked { "panicked" } else { "failed" },
            self.topic,
            self.partition,
        )?;
        match self.id {
            Some(id) => write!(f, "{id}: {}", self.error),
            None => write!(f, "{}: {}", self.offset, self.error),
        }
    }
}

/// A dead letter as a pipeline on a remote backend keeps it there: in the backend topic
/// [`Running::dead_letter_topic`](crate::Running::dead_letter_topic) (`{group
/// prefix}.dead-letters`, one partition, JSON), written before the failed record's input is
/// committed. It outlives the process that wrote it, and any process (or tool) can read it.
///
/// ```no_run
/// # async fn show(connection: dataflow::backend::Connection) -> Result<(), Box<dyn std::error::Error>> {
/// use dataflow::{StoredDeadLetter, TopicSpec};
///
/// let spec = TopicSpec::new("clicks.dead-letters").codec(StoredDeadLetter::codec());
/// let mut reader = connection.reader::<StoredDeadLetter>(spec, "triage").await?;
/// for received in reader.recv_batch(100, std::time::Duration::from_secs(1)).await? {
///     let letter = received.value?;
///     println!("{letter}");
///     if let Some(Ok(value)) = letter.decode::<String>() {
///         println!("  the record was {value:?}");
///     }
/// }
/// reader.commit().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDeadLetter {
    /// The pipeline's name.
    pub pipeline: String,
    /// The stage that failed (`decode` or `encode` for a record that did not convert).
    pub stage: String,
    /// The error's `Display`, or the panic message.
    pub error: String,
    /// Whether the stage panicked (rather than returning `Err`).
    pub panicked: bool,
    /// The topic the record was read from.
    pub topic: String,
    /// Its partition there.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: u64,
    /// The backend's own name for the record's place, when it is not the offset (Redis: the
    /// entry id, such as `1796450301704-0`).
    #[serde(default)]
    pub id: Option<String>,
    /// The type of the value the dead letter carries.
    pub value_type: String,
    /// The value's bytes in the format `format`: for the record as read, its payload from
    /// `topic`; none for a value that did not encode (stage `encode`). Stored as standard
    /// base64 (RFC 4648, padded) in JSON, 4 characters for 3 bytes: `jq -r .payload |
    /// base64 -d` gives the bytes back. (Dead letters stored as an array of numbers, before,
    /// are read too.)
    #[serde(with = "base64_payload")]
    pub payload: Option<Vec<u8>>,
    /// `"bincode"` or `"json"`: how `payload` is encoded.
    pub format: Option<String>,
}

impl StoredDeadLetter {
    /// A dead letter of this process, with `payload` (in `codec`) when there is one.
    pub(crate) fn new(letter: &DeadLetter, payload: Option<(Vec<u8>, Codec)>) -> Self {
        let (payload, format) = match payload {
            Some((bytes, codec)) => (Some(bytes), Some(format_name(codec.format).to_owned())),
            None => (None, None),
        };
        Self {
            pipeline: letter.pipeline.to_owned(),
            stage: letter.stage.to_owned(),
            error: letter.error.clone(),
            panicked: letter.panicked,
            topic: letter.topic.clone(),
            partition: letter.position.partition,
            offset: letter.position.offset,
            id: letter.id.clone(),
            value_type: letter.value_type.to_owned(),
            payload,
            format,
        }
    }

    /// The value decoded as a `T`, or `None` when the dead letter has no payload.
    pub fn decode<T: DeserializeOwned>(&self) -> Option<Result<T, CodecError>> {
        let payload = self.payload.as_deref()?;
        let format = match self.format.as_deref() {
            Some("json") => Format::Json,
            Some("bincode") => Format::Bincode,
            other => {
                let error = format!("unknown payload format {other:?}");
                return Some(Err(CodecError::Decode(error)));
            }
        };
        let codec = Codec {
            format,
            max_bytes: payload.len(),
        };
        Some(codec.decode(payload))
    }

    /// The codec of the backend topic that keeps dead letters: JSON, readable by any tool,
    /// and large enough for a payload of up to 48 MiB (64 MiB of JSON). Read the topic with
    /// it: `TopicSpec::json` allows 1 MiB, less than a large dead letter.
    pub fn codec() -> Codec {
        Codec::json().max_bytes(64 << 20)
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Bincode => "bincode",
        Format::Json => "json",
    }
}

impl fmt::Display for StoredDeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Summary {
            pipeline: &self.pipeline,
            stage: &self.stage,
            panicked: self.panicked,
            topic: &self.topic,
            partition: self.partition,
            offset: self.offset,
            id: self.id.as_deref(),
            error: &self.error,
        }
        .fmt(f)
    }
}

/// `Option<Vec<u8>>` as a base64 string in human-readable formats (JSON), as bytes in the
/// others. Reads a base64 string, bytes, or an array of numbers (the earlier form).
mod base64_payload {
    use std::fmt;

    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::ser::Serializer;

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    text.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    text.push('=');
                }
            }
        }
        text
    }

    pub(super) fn decode(text: &str) -> Result<Vec<u8>, String> {
        let text = text.as_bytes();
        if !text.len().is_multiple_of(4) {
            return Err(format!(
                "base64 of {} characters, not a multiple of 4",
                text.len()
            ));
        }
        let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
        let chunks = text.len() / 4;
        for (index, chunk) in text.chunks(4).enumerate() {
            let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
            if padding > 2 || (padding > 0 && index + 1 != chunks) {
                return Err("misplaced base64 padding".to_owned());
            }
            let mut n = 0u32;
            for &c in &chunk[..4 - padding] {
                let value = ALPHABET
                    .iter()
                    .position(|&a| a == c)
                    .ok_or_else(|| format!("`{}` is not a base64 character", char::from(c)))?;
                n = n << 6 | value as u32;
            }
            n <<= 6 * padding as u32;
            bytes.extend_from_slice(&n.to_be_bytes()[1..4 - padding]);
        }
        Ok(bytes)
    }

    pub(super) fn serialize<S: Serializer>(
        payload: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match payload {
            None => serializer.serialize_none(),
            Some(bytes) if serializer.is_human_readable() => {
                serializer.serialize_some(&encode(bytes))
            }
            Some(bytes) => serializer.serialize_some(&serde_bytes_ref(bytes)),
        }
    }

    /// Serializes as bytes (not as a sequence of numbers).
    fn serde_bytes_ref(bytes: &[u8]) -> impl serde::Serialize + '_ {
        struct Bytes<'a>(&'a [u8]);
        impl serde::Serialize for Bytes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        Bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        deserializer.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> Visitor<'de> for OptionVisitor {
        type Value = Option<Vec<u8>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a payload (base64, bytes or numbers) or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            if deserializer.is_human_readable() {
                deserializer.deserialize_any(PayloadVisitor).map(Some)
            } else {
                deserializer.deserialize_byte_buf(PayloadVisitor).map(Some)
            }
        }
    }

    struct PayloadVisitor;

    impl<'de> Visitor<'de> for PayloadVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a payload: base64, bytes or an array of numbers")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            decode(text).map_err(E::custom)
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
            Ok(bytes.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Self::Value, E> {
            Ok(bytes)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(byte) = seq.next_element::<u8>()? {
                bytes.push(byte);
            }
            Ok(bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter() -> DeadLetter {
        DeadLetter {
            pipeline: "p",
            stage: "parse",
            error: "bad".to_owned(),
            panicked: false,
            topic: "in".to_owned(),
            position: Position {
                partition: 2,
                offset: 7,
            },
            id: None,
            value: Arc::new(13u64),
            value_type: "u64",
        }
    }

    #[test]
    fn a_stored_letter_decodes_its_payload_in_its_format() {
        for codec in [Codec::bincode(), Codec::json()] {
            let mut bytes = Vec::new();
            codec.encode(&13u64, &mut bytes).expect("encodes");
            let stored = StoredDeadLetter::new(&letter(), Some((bytes, codec)));
            assert_eq!(stored.decode::<u64>().map(Result::ok), Some(Some(13)));
            assert_eq!(stored.to_string(), letter().to_string());
        }
    }

    #[test]
    fn a_stored_letter_without_payload_or_with_an_unknown_format_says_so() {
        let mut stored = StoredDeadLetter::new(&letter(), None);
        assert!(stored.decode::<u64>().is_none());
        stored.payload = Some(vec![13]);
        stored.format = Some("avro".to_owned());
        let error = stored
            .decode::<u64>()
            .and_then(Result::err)
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("cannot decode value: unknown payload format Some(\"avro\")")
        );
    }

    #[test]
    fn a_stored_letter_is_json_any_tool_reads() {
        let stored = StoredDeadLetter::new(&letter(), Some((b"13".to_vec(), Codec::json())));
        let mut bytes = Vec::new();
        StoredDeadLetter::codec()
            .encode(&stored, &mut bytes)
            .expect("encodes");
        let text = String::from_utf8(bytes).expect("JSON is text");
        assert!(text.contains(r#""stage":"parse""#), "{text}");
        // The payload `13` as base64.
        assert!(text.contains(r#""payload":"MTM=""#), "{text}");
        assert!(text.contains(r#""partition":2,"offset":7"#), "{text}");
        assert!(text.contains(r#""format":"json""#), "{text}");
    }

    #[test]
    fn payloads_are_base64_any_tool_decodes() {
        // RFC 4648's test vectors.
        for (bytes, text) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_payload::encode(bytes.as_bytes()), text);
            assert_eq!(
                base64_payload::decode(text).as_deref(),
                Ok(bytes.as_bytes())
            );
        }
        let all: Vec<u8> = (0..=255).collect();
        let text = base64_payload::encode(&all);
        assert_eq!(text.len(), 344, "4 characters for 3 bytes");
        assert_eq!(base64_payload::decode(&text), Ok(all));
        assert!(base64_payload::decode("Zg=").is_err());
        assert!(base64_payload::decode("Zg==Zg==").is_err());
        assert!(base64_payload::decode("Z!==").is_err());
    }

    #[test]
    fn a_stored_letter_round_trips_and_reads_the_earlier_form() {
        let payload: Vec<u8> = (0..=255).collect();
        let stored = StoredDeadLetter::new(&letter(), Some((payload, Codec::bincode())));
        for codec in [StoredDeadLetter::codec(), Codec::bincode()] {
            let mut bytes = Vec::new();
            codec.encode(&stored, &mut bytes).expect("encodes");
            let read: StoredDeadLetter = codec.decode(&bytes).expect("decodes");
            assert_eq!(read, stored);
        }
        let mut none = stored.clone();
        none.payload = None;
        let mut bytes = Vec::new();
        StoredDeadLetter::codec()
            .encode(&none, &mut bytes)
            .expect("encodes");
        let read: StoredDeadLetter = StoredDeadLetter::codec().decode(&bytes).expect("decodes");
        assert_eq!(read.payload, None);
        // As dead letters were stored before: the payload as an array of numbers.
        let earlier = r#"{"pipeline":"p","stage":"parse","error":"bad","panicked":false,
            "topic":"in","partition":2,"offset":7,"value_type":"u64","payload":[49,51],
            "format":"json"}"#;
        let read: StoredDeadLetter = StoredDeadLetter::codec()
            .decode(earlier.as_bytes())
            .expect("decodes");
        assert_eq!(read.decode::<u64>().map(Result::ok), Some(Some(13)));
    }
}
