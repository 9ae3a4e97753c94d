//! Errors of the backends.

/// Why a backend operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend URL is malformed.
    #[error("invalid backend URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL's scheme names no backend.
    #[error(
        "unknown backend `{scheme}://`: use mem://, file://DIR, stdio://, redis://, rediss:// or kafka://"
    )]
    UnknownScheme {
        /// The scheme.
        scheme: String,
    },
    /// The backend exists but this build does not include it.
    #[error("the `{scheme}://` backend needs the `{feature}` cargo feature of `dataflow`")]
    FeatureDisabled {
        /// The scheme.
        scheme: String,
        /// The cargo feature to enable.
        feature: &'static str,
    },
    /// A credential named by the URL could not be read.
    #[error("credential: {0}")]
    Credential(String),
    /// The server refused the credentials or the user lacks a permission. Fatal: retrying
    /// cannot help.
    #[error("{backend}: authentication or authorization failed: {message}")]
    Auth {
        /// The backend's scheme.
        backend: &'static str,
        /// The server's message.
        message: String,
    },
    /// TLS could not be set up, or the server wants TLS and the URL is plaintext.
    #[error("{backend}: TLS: {message}")]
    Tls {
        /// The backend's scheme.
        backend: &'static str,
        /// What happened.
        message: String,
    },
    /// The server could not be reached, after retries with backoff.
    #[error("{backend}: cannot reach {endpoint}: {message}")]
    Unreachable {
        /// The backend's scheme.
        backend: &'static str,
        /// Host and port.
        endpoint: String,
        /// The last error.
        message: String,
    },
    /// A topic has fewer partitions than the pipeline needs, or cannot be created.
    #[error("{backend}: topic `{topic}`: {message}")]
    Topic {
        /// The backend's scheme.
        backend: &'static str,
        /// The topic.
        topic: String,
        /// What happened.
        message: String,
    },
    /// Any other error the server or its client library reported.
    #[error("{backend}: {message}")]
    Server {
        /// The backend's scheme.
        backend: &'static str,
        /// The server's or the client library's message.
        message: String,
    },
    /// The topic was closed (embedded broker).
    #[error("topic `{topic}` is closed")]
    Closed {
        /// The topic.
        topic: String,
    },
    /// A commit failed (not because the partition moved to another member: that is a
    /// refusal, reported apart).
    #[error("commit on topic `{topic}` failed: {message}")]
    Commit {
        /// The topic.
        topic: String,
        /// What happened.
        message: String,
    },
    /// A reader fell behind the topic's retention: `skipped` records were removed before it
    /// read them; it continues from the oldest record kept.
    #[error("reader of topic `{topic}` lagged behind: {skipped} records were skipped")]
    Lagged {
        /// The topic.
        topic: String,
        /// How many records were skipped.
        skipped: u64,
    },
    /// A value did not encode (over the codec's size limit, for example).
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
    /// An embedded-broker error (a `mem://` topic of another type, for example).
    #[error(transparent)]
    Broker(#[from] broker::TopicError),
    /// An embedded-broker consumer group could not be opened.
    #[error(transparent)]
    Group(#[from] broker::GroupError),
}

impl BackendError {
    /// Whether retrying cannot help (bad URL, credentials, permissions, TLS, missing feature).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, Self::Unreachable { .. } | Self::Server { .. })
    }
}
