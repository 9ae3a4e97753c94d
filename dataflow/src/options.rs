//! How a pipeline runs: the broker for its internal topics, batch size, metrics.

use broker::{Broker, Topic};

use crate::backend::Connection;
use crate::codec::Codec;
use crate::dead_letter::DeadLetter;

/// Options of a pipeline run. `PipelineOptions::default()` suits most uses.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub(crate) backend: Option<BackendChoice>,
    pub(crate) codec: Option<Codec>,
    pub(crate) batch: usize,
    pub(crate) linger: std::time::Duration,
    pub(crate) sample_every: u32,
    pub(crate) metrics: bool,
    pub(crate) internal_capacity: u64,
    pub(crate) dead_letters: Option<Topic<DeadLetter>>,
    pub(crate) group: Option<String>,
    pub(crate) checkpoint_every: std::time::Duration,
    pub(crate) state_dir: Option<std::path::PathBuf>,
    pub(crate) guarantee: Guarantee,
    pub(crate) start_at: crate::backend::StartAt,
}

/// What a pipeline promises about its sinks after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Guarantee {
    /// Every output reaches its sink at least once: after a crash, the outputs of the records
    /// processed since the last checkpoint (or commit) are written again. Outputs are written
    /// as soon as they are made. The default, and the cheaper one.
    #[default]
    AtLeastOnce,
    /// Every output reaches its sink exactly once, as a reader of the sink sees it, whatever
    /// crashes (pipelines in one process with sinks on the embedded broker: `mem://`,
    /// `file://`). The outputs of each checkpoint interval are held back, kept in the
    /// checkpoint, and appended once it is durable: a reader sees them up to one interval
    /// later, and each output is encoded once more (into the checkpoint). The pipeline must
    /// be its sinks' only writer. Dead letters stay at-least-once.
    ExactlyOnce,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            backend: None,
            codec: None,
            batch: 256,
            linger: std::time::Duration::ZERO,
            sample_every: 1024,
            metrics: true,
            internal_capacity: 1 << 14,
            dead_letters: None,
            group: None,
            checkpoint_every: std::time::Duration::from_secs(1),
            state_dir: None,
            guarantee: Guarantee::AtLeastOnce,
            start_at: crate::backend::StartAt::Earliest,
        }
    }
}

impl PipelineOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// The embedded broker that holds the pipeline's internal topics (repartition, merge,
    /// dead letters) and its sources and sinks bound by name. By default they live in a
    /// private broker of their own.
    pub fn broker(mut self, broker: &Broker) -> Self {
        self.backend = Some(BackendChoice::Connection(Connection::mem(broker)));
        self
    }

    /// The backend, by URL: `mem://` (a private embedded broker, the default), `file://DIR`,
    /// `stdio://`, `redis://host:port`, `rediss://host:port` or `kafka://host:port` (see
    /// [`backend`](crate::backend)). Sources and sinks bound by name, and the internal
    /// topics, live there; `start` connects, and fails fast on a bad URL or credentials.
    pub fn backend(mut self, url: &str) -> Self {
        self.backend = Some(BackendChoice::Url(url.to_owned()));
        self
    }

    /// A backend already connected (shared with the code that feeds the sources).
    pub fn connection(mut self, connection: &Connection) -> Self {
        self.backend = Some(BackendChoice::Connection(connection.clone()));
        self
    }

    /// The codec of records on a backend that moves bytes, for topics whose [`TopicSpec`]
    /// sets none (default: the backend's: JSON on `stdio://`, else bincode, 1 MiB at most).
    ///
    /// [`TopicSpec`]: crate::TopicSpec
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Records a task reads before it flushes its outputs and commits (default 256). Larger
    /// batches amortise commits; smaller ones lower latency under load.
    pub fn batch(mut self, records: usize) -> Self {
        self.batch = records.max(1);
        self
    }

    /// How long a task's batch waits for more records once it has some, up to the
    /// [`batch`](Self::batch) size (default: not at all, so a record goes on as soon as it is
    /// read). Micro-batching: under light load, a linger of a few hundred microseconds makes
    /// fewer, larger batches (fewer appends, commits and wake-ups per record) at the price of
    /// up to that much latency per record; under heavy load batches fill by themselves. The
    /// latency benchmark draws the trade.
    pub fn linger(mut self, linger: std::time::Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Times one record in `n` through its stages (default 1024, which keeps the cost of
    /// metrics under 5% on a 20-stage identity pipeline; 1 times every record).
    pub fn sample_every(mut self, n: u32) -> Self {
        self.sample_every = n.max(1);
        self
    }

    /// Turns latency sampling off (counts are still kept).
    pub fn without_latency(mut self) -> Self {
        self.metrics = false;
        self
    }

    /// Per-partition capacity of internal topics (default 16384 records). Producers into a
    /// full internal topic wait: that is how backpressure crosses segments. On Redis (7 or
    /// later) it bounds the records of a partition the downstream group has not processed,
    /// checked every eighth of the capacity.
    pub fn internal_capacity(mut self, records: u64) -> Self {
        self.internal_capacity = records.max(1);
        self
    }

    /// The topic that receives dead letters (by default an internal topic, see
    /// [`Running::dead_letters`](crate::Running::dead_letters)).
    pub fn dead_letters(mut self, topic: Topic<DeadLetter>) -> Self {
        self.dead_letters = Some(topic);
        self
    }

    /// Where the sources' consumer groups start when they do not exist yet (default:
    /// [`StartAt::Earliest`](crate::backend::StartAt)): the records already in a source
    /// (earliest), only those appended from now on (latest), or those from a time on (replay;
    /// not on Kafka). Groups that exist go on from their committed offsets, and a pipeline
    /// restarting from a checkpoint from the checkpoint: to replay under the same group
    /// prefix, remove those first, or use a new prefix.
    pub fn start_at(mut self, start: crate::backend::StartAt) -> Self {
        self.start_at = start;
        self
    }

    /// The consumer-group prefix (default: the pipeline's name). Two runs with the same
    /// prefix on the same topics share committed offsets: a restarted pipeline resumes where
    /// the previous one stopped.
    pub fn group(mut self, prefix: &str) -> Self {
        self.group = Some(prefix.to_owned());
        self
    }
}

impl PipelineOptions {
    /// How often a pipeline in one process (`mem://`, `file://`, `stdio://`) takes a
    /// checkpoint (default 1 s, at least 10 ms): a consistent copy of its keyed state and of
    /// its sources' positions, from which a restart resumes (see the crate docs,
    /// "Checkpoints"). Its sources commit only what a checkpoint covers. A checkpoint pauses
    /// the sources while its barrier crosses the graph (typically well under a millisecond);
    /// it is written in the background.
    pub fn checkpoint_every(mut self, interval: std::time::Duration) -> Self {
        self.checkpoint_every = interval.max(std::time::Duration::from_millis(10));
        self
    }

    /// What the pipeline promises about its sinks after a crash (default:
    /// [`Guarantee::AtLeastOnce`]).
    pub fn guarantee(mut self, guarantee: Guarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// The directory that keeps this pipeline's checkpoints (one pipeline per directory).
    /// Default: on `file://DIR`, `DIR/_checkpoints/{group prefix}`; on `mem://`, an internal
    /// topic of the embedded broker (they last as long as it does).
    pub fn state_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }
}

/// How [`PipelineOptions`] names its backend.
#[derive(Debug, Clone)]
pub(crate) enum BackendChoice {
    Url(String),
    Connection(Connection),
}
