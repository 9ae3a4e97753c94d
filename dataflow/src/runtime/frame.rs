//! Internal topics of a pipeline that checkpoints carry frames: the records, and the barriers
//! that mark where each writer passed a checkpoint. [`FramedTopic`] wraps the topic so that
//! tasks still write and read plain values; the barriers travel in the batches beside them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use broker::Position;
use serde::{Deserialize, Serialize};

use crate::backend::log::{
    Barrier, Batch, Entry, From, Joining, LogReader, LogTopic, LogWriter, RecordMeta, Wait,
};
use crate::backend::{BackendError, BoxFuture, StartAt};
use crate::codec::CodecError;

/// What an internal topic of a checkpointing pipeline holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Frame<T> {
    /// A record, and the append time of the source record it was made from (nanoseconds
    /// since the Unix epoch; 0 if unknown).
    Record { value: T, origin: u64 },
    /// Writer `writer` (a task upstream) has written everything before checkpoint `epoch`.
    Barrier { epoch: u64, writer: u32 },
}

/// An internal topic of frames, seen as a topic of values.
pub(crate) struct FramedTopic<T> {
    inner: Arc<dyn LogTopic<Frame<T>>>,
    /// How many tasks write to each partition: a reader has every record before a
    /// checkpoint once it has read this many of its barriers. Set once every segment is
    /// declared, before any task runs.
    writers: Arc<AtomicU32>,
}

impl<T> FramedTopic<T> {
    pub(crate) fn new(inner: Arc<dyn LogTopic<Frame<T>>>) -> Self {
        Self {
            inner,
            writers: Arc::default(),
        }
    }

    /// Where the writer count goes once it is known.
    pub(crate) fn writers(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.writers)
    }
}

impl<T: Send + Sync + 'static> LogTopic<T> for FramedTopic<T> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn partitions(&self) -> u32 {
        self.inner.partitions()
    }

    fn writer(&self) -> BoxFuture<'_, Result<Box<dyn LogWriter<T>>, BackendError>> {
        Box::pin(async move {
            Ok(Box::new(FramedWriter {
                inner: self.inner.writer().await?,
                frames: Vec::new(),
                rejected: Vec::new(),
                partitions: self.inner.partitions(),
            }) as Box<dyn LogWriter<T>>)
        })
    }

    fn join<'a>(&'a self, group: &'a str, local_members: u32, start: StartAt) -> Joining<'a, T> {
        Box::pin(async move {
            let inner = self.inner.join(group, local_members, start).await?;
            Ok(self.framed_reader(inner))
        })
    }

    fn partition_reader(&self, partition: u32, from: From) -> Option<Joining<'_, T>> {
        let inner = self.inner.partition_reader(partition, from)?;
        Some(Box::pin(
            async move { Ok(self.framed_reader(inner.await?)) },
        ))
    }

    fn fail(&self) {
        self.inner.fail();
    }
}

impl<T: Send + Sync + 'static> FramedTopic<T> {
    fn framed_reader(&self, inner: Box<dyn LogReader<Frame<T>>>) -> Box<dyn LogReader<T>> {
        Box::new(FramedReader {
            inner,
            frames: Batch::default(),
            writers: Arc::clone(&self.writers),
        })
    }
}

/// Writes values as [`Frame::Record`]s, and barriers to every partition.
struct FramedWriter<T> {
    inner: Box<dyn LogWriter<Frame<T>>>,
    /// Reused from batch to batch.
    frames: Vec<Frame<T>>,
    rejected: Vec<(Frame<T>, CodecError)>,
    partitions: u32,
}

impl<T: Send + Sync + 'static> LogWriter<T> for FramedWriter<T> {
    fn append<'a>(
        &'a mut self,
        partition: u32,
        values: &'a mut Vec<T>,
        rejected: Option<&'a mut Vec<(T, CodecError)>>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.frames.clear();
        self.frames.extend(
            values
                .drain(..)
                .map(|value| Frame::Record { value, origin: 0 }),
        );
        self.append_frames(partition, rejected)
    }

    fn append_traced<'a>(
        &'a mut self,
        partition: u32,
        values: &'a mut Vec<T>,
        origins: &'a mut Vec<u64>,
        rejected: Option<&'a mut Vec<(T, CodecError)>>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.frames.clear();
        let origins = origins.drain(..).chain(std::iter::repeat(0));
        self.frames.extend(
            values
                .drain(..)
                .zip(origins)
                .map(|(value, origin)| Frame::Record { value, origin }),
        );
        self.append_frames(partition, rejected)
    }

    fn barrier(&mut self, epoch: u64, writer: u32) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            for partition in 0..self.partitions {
                self.frames.clear();
                self.frames.push(Frame::Barrier { epoch, writer });
                self.inner.append(partition, &mut self.frames, None).await?;
            }
            Ok(())
        })
    }
}

impl<T: Send + Sync + 'static> FramedWriter<T> {
    /// Appends the frames made of a batch's values.
    fn append_frames<'a>(
        &'a mut self,
        partition: u32,
        rejected: Option<&'a mut Vec<(T, CodecError)>>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let appended = match rejected {
                Some(rejected) => {
                    self.rejected.clear();
                    let appended = self
                        .inner
                        .append(partition, &mut self.frames, Some(&mut self.rejected))
                        .await;
                    rejected.extend(self.rejected.drain(..).filter_map(
                        |(frame, error)| match frame {
                            Frame::Record { value, .. } => Some((value, error)),
                            Frame::Barrier { .. } => None,
                        },
                    ));
                    appended
                }
                None => self.inner.append(partition, &mut self.frames, None).await,
            };
            self.frames.clear();
            appended
        })
    }
}

/// Reads frames, handing the records out as values and the barriers beside them.
struct FramedReader<T> {
    inner: Box<dyn LogReader<Frame<T>>>,
    /// Reused from batch to batch.
    frames: Batch<Frame<T>>,
    writers: Arc<AtomicU32>,
}

impl<T: Send + Sync + 'static> LogReader<T> for FramedReader<T> {
    fn read<'a>(
        &'a mut self,
        max: usize,
        wait: Wait,
        batch: &'a mut Batch<T>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.frames.clear();
            self.inner.read(max, wait, &mut self.frames).await?;
            for Entry { value, mut meta } in self.frames.records.drain(..) {
                match value {
                    Frame::Record { value, origin } => {
                        // Latency is measured from the source record, not from this hop.
                        if origin != 0 {
                            meta.timestamp_nanos = origin;
                        }
                        batch.records.push(Entry { value, meta });
                    }
                    Frame::Barrier { epoch, writer } => batch.barriers.push(Barrier {
                        epoch,
                        writer,
                        // Acquire: pairs with the Release of the launch that counted them.
                        writers: self.writers.load(Ordering::Acquire),
                        position: meta.position,
                    }),
                }
            }
            batch.undecodable.append(&mut self.frames.undecodable);
            batch.payloads.append(&mut self.frames.payloads);
            batch.ids.append(&mut self.frames.ids);
            batch.lagged += self.frames.lagged;
            batch.ended |= self.frames.ended;
            Ok(())
        })
    }

    fn commit<'a>(
        &'a mut self,
        positions: &'a [Position],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>> {
        self.inner.commit(positions)
    }

    fn again(&self, record: &RecordMeta, payloads: &[Vec<u8>]) -> Option<T> {
        match self.inner.again(record, payloads)? {
            Frame::Record { value, .. } => Some(value),
            Frame::Barrier { .. } => None,
        }
    }

    fn payload_codec(&self) -> Option<crate::codec::Codec> {
        // A payload here is a frame's, not the value's: a dead letter encodes the value again.
        None
    }

    fn assignment(&self) -> Option<Vec<u32>> {
        self.inner.assignment()
    }

    fn leave(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        self.inner.leave()
    }
}
