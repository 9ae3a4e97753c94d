//! Standard input and output (`stdio://`), so a pipeline is a Unix filter:
//! `cat clicks.jsonl | my-pipeline stdio:// | jq .`
//!
//! - Every source reads lines from standard input, one record per line (one partition; a
//!   second topic reading standard input is refused). The end of input ends the stream: the
//!   pipeline drains, and [`Running::until_end`](crate::Running::until_end) returns.
//! - Every sink writes its records to standard output, one line each.
//! - Dead letters are written to standard error, one JSON
//!   [`StoredDeadLetter`](crate::StoredDeadLetter) per line; a malformed line is one of them.
//! - Internal topics (repartitions) live in memory, in the embedded broker.
//!
//! Records are JSON unless a topic's [`TopicSpec`] names another codec (which must then be
//! line-safe: JSON is; a bincode topic is refused). There is one member per topic and no group
//! across processes: committing does nothing, and a restart reads whatever standard input
//! gives it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker::Broker;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, Lines, Stdin};
use tokio::sync::Mutex;

use super::bytes::{ByteTopic, Delivery, RemoteBackend, RemoteMember, RemoteProducer};
use super::store::{Backend, Open};
use super::url::BackendUrl;
use super::{BackendError, BoxFuture};
use crate::codec::{Codec, Format};
use crate::spec::{Role, TopicSpec};

const SCHEME: &str = "stdio";

/// Connects to `stdio://` (no host, no parameter).
pub(crate) fn connect(
    url: BackendUrl,
) -> BoxFuture<'static, Result<Arc<dyn Backend>, BackendError>> {
    Box::pin(async move {
        url.refuse_location_and_params()?;
        Ok(Arc::new(StdioBackend::new()) as Arc<dyn Backend>)
    })
}

/// The process's standard streams as a backend.
#[derive(Debug)]
struct StdioBackend {
    /// Holds the internal topics.
    broker: Broker,
    stdin: Arc<Stream>,
    stdout: Arc<Stream>,
    stderr: Arc<Stream>,
}

impl StdioBackend {
    fn new() -> Self {
        let stream = |kind| {
            Arc::new(Stream {
                kind,
                reading: AtomicBool::new(false),
                out: Mutex::new(()),
            })
        };
        Self {
            broker: Broker::new(),
            stdin: stream(Kind::Stdin),
            stdout: stream(Kind::Stdout),
            stderr: stream(Kind::Stderr),
        }
    }
}

impl Backend for StdioBackend {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn shared_between_processes(&self) -> bool {
        false
    }

    fn default_codec(&self) -> Codec {
        Codec::json()
    }

    fn open<'a>(
        &'a self,
        spec: &'a TopicSpec,
        open: &'a mut dyn Open,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let stream = match spec.role {
                Role::Internal { .. } => return open.embedded(&self.broker, None),
                Role::DeadLetters => &self.stderr,
                Role::Data => &self.stdout,
            };
            if spec.codec.is_some_and(|codec| codec.format != Format::Json) {
                return Err(BackendError::Topic {
                    backend: SCHEME,
                    topic: spec.name.clone(),
                    message: "stdio:// carries one record per line: its topics are JSON".to_owned(),
                });
            }
            // Writers of a data topic write to standard output; its readers read standard
            // input (the stream decides by what is asked of it).
            let backend: Arc<dyn RemoteBackend> = match stream.kind {
                Kind::Stdout => Arc::new(Duplex {
                    input: Arc::clone(&self.stdin),
                    output: Arc::clone(&self.stdout),
                }),
                _ => Arc::new(Duplex {
                    input: Arc::clone(&self.stdin),
                    output: Arc::clone(stream),
                }),
            };
            open.bytes(ByteTopic {
                backend,
                name: spec.name.clone(),
                partitions: 1,
            })
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Stdin,
    Stdout,
    Stderr,
}

/// One standard stream.
#[derive(Debug)]
struct Stream {
    kind: Kind,
    /// Standard input is read by one member only.
    reading: AtomicBool,
    /// Writers take it so that their lines do not interleave.
    out: Mutex<()>,
}

/// A topic whose readers read `input` and whose writers write `output`.
#[derive(Debug)]
struct Duplex {
    input: Arc<Stream>,
    output: Arc<Stream>,
}

impl RemoteBackend for Duplex {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn shared_between_processes(&self) -> bool {
        false
    }

    fn ensure_topic<'a>(
        &'a self,
        _topic: &'a str,
        _partitions: u32,
    ) -> BoxFuture<'a, Result<u32, BackendError>> {
        Box::pin(async { Ok(1) })
    }

    fn producer<'a>(
        &'a self,
        _topic: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteProducer>, BackendError>> {
        let output = Arc::clone(&self.output);
        Box::pin(async move {
            Ok(Box::new(LineWriter {
                output,
                buffer: Vec::new(),
            }) as Box<dyn RemoteProducer>)
        })
    }

    fn join<'a>(
        &'a self,
        topic: &'a str,
        _group: &'a str,
        _partitions: u32,
        _local_members: u32,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteMember>, BackendError>> {
        Box::pin(async move {
            // Acquire/Release are not needed: the flag guards nothing but itself.
            if self.input.reading.swap(true, Ordering::Relaxed) {
                return Err(BackendError::Topic {
                    backend: SCHEME,
                    topic: topic.to_owned(),
                    message: "standard input is read by one member only, and another topic or \
                              member already reads it"
                        .to_owned(),
                });
            }
            Ok(Box::new(LineReader {
                lines: BufReader::new(tokio::io::stdin()).lines(),
                next_offset: 0,
                ended: false,
            }) as Box<dyn RemoteMember>)
        })
    }
}

/// Writes each record as a line.
struct LineWriter {
    output: Arc<Stream>,
    buffer: Vec<u8>,
}

impl LineWriter {
    async fn write<W: AsyncWrite + Unpin>(mut out: W, bytes: &[u8]) -> std::io::Result<()> {
        out.write_all(bytes).await?;
        out.flush().await
    }
}

impl RemoteProducer for LineWriter {
    fn send<'a>(
        &'a mut self,
        _partition: u32,
        payloads: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.buffer.clear();
            for payload in payloads {
                self.buffer.extend_from_slice(payload);
                self.buffer.push(b'\n');
            }
            let _turn = self.output.out.lock().await;
            let written = match self.output.kind {
                Kind::Stderr => Self::write(tokio::io::stderr(), &self.buffer).await,
                _ => Self::write(tokio::io::stdout(), &self.buffer).await,
            };
            written.map_err(|e| BackendError::Server {
                backend: SCHEME,
                message: format!("cannot write: {e}"),
            })
        })
    }
}

/// Reads records from standard input, a line each.
struct LineReader {
    lines: Lines<BufReader<Stdin>>,
    next_offset: u64,
    ended: bool,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl RemoteMember for LineReader {
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, BackendError>> {
        Box::pin(async move {
            let mut batch = Vec::new();
            let deadline = tokio::time::Instant::now() + wait;
            while batch.len() < max.max(1) && !self.ended {
                // After the first line, take only what is already buffered.
                let until = if batch.is_empty() {
                    deadline
                } else {
                    tokio::time::Instant::now()
                };
                // `next_line` is cancel-safe: a timeout loses no line.
                match tokio::time::timeout_at(until, self.lines.next_line()).await {
                    Err(_elapsed) => break,
                    Ok(Ok(Some(line))) => {
                        batch.push(Delivery {
                            partition: 0,
                            offset: self.next_offset,
                            timestamp_nanos: now_nanos(),
                            payload: line.into_bytes(),
                            id: None,
                        });
                        self.next_offset += 1;
                    }
                    Ok(Ok(None)) => self.ended = true,
                    Ok(Err(e)) => {
                        return Err(BackendError::Server {
                            backend: SCHEME,
                            message: format!("cannot read standard input: {e}"),
                        });
                    }
                }
            }
            Ok(batch)
        })
    }

    fn commit<'a>(
        &'a mut self,
        _positions: &'a [(u32, u64)],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn leave(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }

    fn ended(&self) -> bool {
        self.ended
    }
}
