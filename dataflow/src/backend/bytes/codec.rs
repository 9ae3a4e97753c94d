//! The codec adapter: a topic of a byte-level backend as a typed log. Values are encoded on
//! the way out and decoded on the way in with the topic's [`Codec`]; a payload that does not
//! decode is handed to the reader's caller as [`Undecodable`] (a dead letter), never an error.

use std::collections::VecDeque;
use std::marker::PhantomData;

use broker::Position;

use super::backpressure::{Backpressure, Bound};
use super::{ByteTopic, Delivery, POLL_WAIT, RemoteMember, RemoteProducer};
use crate::backend::log::{
    Batch, Entry, From, Joining, LogReader, LogTopic, LogWriter, RecordMeta, Undecodable, Wait,
};
use crate::backend::{BackendError, BoxFuture, StartAt};
use crate::codec::{Codec, CodecError};
use crate::spec::{Role, TopicSpec};
use crate::stage::Deliver;

/// A topic of encoded `T`s.
pub(crate) struct CodecTopic<T> {
    topic: ByteTopic,
    codec: Codec,
    /// For an internal topic: the backlog per partition above which writers wait.
    bound: Option<Bound>,
    _values: PhantomData<fn(T) -> T>,
}

impl<T> CodecTopic<T> {
    pub(crate) fn new(topic: ByteTopic, codec: Codec, spec: &TopicSpec) -> Self {
        let bound = match spec.role {
            Role::Internal { capacity, .. } => Some(Bound::new(capacity)),
            Role::Data | Role::DeadLetters => None,
        };
        Self {
            topic,
            codec,
            bound,
            _values: PhantomData,
        }
    }
}

impl<T: Deliver> LogTopic<T> for CodecTopic<T> {
    fn name(&self) -> &str {
        &self.topic.name
    }

    fn partitions(&self) -> u32 {
        self.topic.partitions
    }

    fn writer(&self) -> BoxFuture<'_, Result<Box<dyn LogWriter<T>>, BackendError>> {
        Box::pin(async move {
            let producer = self.topic.backend.producer(&self.topic.name).await?;
            let backpressure = self
                .bound
                .clone()
                .map(|bound| Backpressure::new(&self.topic.name, bound));
            Ok(Box::new(CodecWriter::<T> {
                producer,
                codec: self.codec,
                encoded: Vec::new(),
                backpressure,
                _values: PhantomData,
            }) as Box<dyn LogWriter<T>>)
        })
    }

    fn join<'a>(&'a self, group: &'a str, local_members: u32, start: StartAt) -> Joining<'a, T> {
        Box::pin(async move {
            let topic = &self.topic;
            let member = topic
                .backend
                .join_at(&topic.name, group, topic.partitions, local_members, start)
                .await?;
            Ok(Box::new(CodecReader::<T>::new(member, self.codec)) as Box<dyn LogReader<T>>)
        })
    }

    fn partition_reader(&self, partition: u32, from: From) -> Option<Joining<'_, T>> {
        // A remote topic between segments is read by a group; only a changelog is read by
        // partition, from its start.
        if from != From::Start {
            return None;
        }
        Some(Box::pin(async move {
            Ok(Box::new(PartitionReader::<T> {
                topic: self.topic.clone(),
                partition,
                cursor: String::new(),
                codec: self.codec,
                _values: PhantomData,
            }) as Box<dyn LogReader<T>>)
        }))
    }

    fn fail(&self) {
        if let Some(bound) = &self.bound {
            bound.close();
        }
    }
}

/// Reads one partition of a remote topic outside any group, through
/// [`RemoteBackend::read_partition`](super::RemoteBackend::read_partition).
struct PartitionReader<T> {
    topic: ByteTopic,
    partition: u32,
    /// Where the next read starts.
    cursor: String,
    codec: Codec,
    _values: PhantomData<fn() -> T>,
}

impl<T: Deliver> LogReader<T> for PartitionReader<T> {
    fn read<'a>(
        &'a mut self,
        max: usize,
        _wait: Wait,
        batch: &'a mut Batch<T>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let (deliveries, cursor) = self
                .topic
                .backend
                .read_partition(&self.topic.name, self.partition, &self.cursor, max)
                .await?;
            self.cursor = cursor;
            for delivery in deliveries {
                decode_into(self.codec, delivery, batch);
            }
            Ok(())
        })
    }

    fn commit<'a>(
        &'a mut self,
        _positions: &'a [Position],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn again(&self, record: &RecordMeta, payloads: &[Vec<u8>]) -> Option<T> {
        self.codec
            .decode(payloads.get(record.payload as usize)?)
            .ok()
    }

    fn leave(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Decodes `delivery` into `batch`: a record, or a payload that did not decode.
fn decode_into<T: Deliver>(codec: Codec, delivery: Delivery, batch: &mut Batch<T>) {
    let mut meta = RecordMeta {
        position: Position {
            partition: delivery.partition,
            offset: delivery.offset,
        },
        timestamp_nanos: delivery.timestamp_nanos,
        payload: 0,
    };
    match codec.decode::<T>(&delivery.payload) {
        Ok(value) => {
            meta.payload = batch.payloads.len() as u32;
            batch.payloads.push(delivery.payload);
            batch.ids.push(delivery.id);
            batch.records.push(Entry { value, meta });
        }
        Err(error) => batch.undecodable.push((
            meta,
            Undecodable {
                error,
                payload: delivery.payload,
                id: delivery.id,
            },
        )),
    }
}

/// Encodes values and sends them through a [`RemoteProducer`].
struct CodecWriter<T> {
    producer: Box<dyn RemoteProducer>,
    codec: Codec,
    /// Reused from batch to batch.
    encoded: Vec<Vec<u8>>,
    backpressure: Option<Backpressure>,
    _values: PhantomData<fn(T)>,
}

impl<T: Deliver> LogWriter<T> for CodecWriter<T> {
    fn append<'a>(
        &'a mut self,
        partition: u32,
        values: &'a mut Vec<T>,
        mut rejected: Option<&'a mut Vec<(T, CodecError)>>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.encoded.clear();
        let mut failed = None;
        for value in values.drain(..) {
            let mut bytes = Vec::new();
            match self.codec.encode(&value, &mut bytes) {
                Ok(()) => self.encoded.push(bytes),
                Err(error) => match rejected.as_deref_mut() {
                    Some(rejected) => rejected.push((value, error)),
                    None => {
                        failed.get_or_insert(error);
                    }
                },
            }
        }
        Box::pin(async move {
            if let Some(error) = failed {
                return Err(error.into());
            }
            if self.encoded.is_empty() {
                return Ok(());
            }
            self.producer.send(partition, &self.encoded).await?;
            match &mut self.backpressure {
                Some(backpressure) => {
                    let sent = self.encoded.len();
                    backpressure
                        .after_send(&mut *self.producer, partition, sent)
                        .await
                }
                None => Ok(()),
            }
        })
    }
}

/// The result of one poll, with the member it borrowed.
type Polled = (Box<dyn RemoteMember>, Result<Vec<Delivery>, BackendError>);

/// Decodes what a [`RemoteMember`] polls.
///
/// Cancel-safe: a poll in flight owns the member; if the caller stops waiting, the poll is
/// kept and resumed by the next call, and what it returns is handed out then. No delivery is
/// dropped on the floor.
pub(crate) struct CodecReader<T> {
    /// At home when no poll is in flight.
    member: Option<Box<dyn RemoteMember>>,
    in_flight: Option<BoxFuture<'static, Polled>>,
    /// Deliveries polled and not handed out yet.
    ready: VecDeque<Delivery>,
    codec: Codec,
    _values: PhantomData<fn() -> T>,
}

impl<T> CodecReader<T> {
    pub(crate) fn new(member: Box<dyn RemoteMember>, codec: Codec) -> Self {
        Self {
            member: Some(member),
            in_flight: None,
            ready: VecDeque::new(),
            codec,
            _values: PhantomData,
        }
    }

    /// Polls (or resumes the poll in flight) and keeps what it returns in `ready`.
    async fn poll(&mut self, max: usize) -> Result<(), BackendError> {
        let in_flight = match &mut self.in_flight {
            Some(in_flight) => in_flight,
            None => {
                let mut member = self.member.take().expect("the member is home");
                self.in_flight.insert(Box::pin(async move {
                    let polled = member.poll(max, POLL_WAIT).await;
                    (member, polled)
                }))
            }
        };
        let (member, polled) = in_flight.await;
        self.in_flight = None;
        self.member = Some(member);
        self.ready.extend(polled?);
        Ok(())
    }

    /// Brings the member home, finishing a poll the caller stopped waiting for.
    async fn member(&mut self) -> Result<&mut Box<dyn RemoteMember>, BackendError> {
        if self.in_flight.is_some() {
            self.poll(0).await?;
        }
        Ok(self.member.as_mut().expect("the member is home"))
    }
}

impl<T: Deliver> CodecReader<T> {
    fn hand_out(&mut self, max: usize, batch: &mut Batch<T>) {
        while batch.len() < max {
            let Some(delivery) = self.ready.pop_front() else {
                break;
            };
            decode_into(self.codec, delivery, batch);
        }
    }
}

impl<T: Deliver> LogReader<T> for CodecReader<T> {
    fn read<'a>(
        &'a mut self,
        max: usize,
        wait: Wait,
        batch: &'a mut Batch<T>,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let max = max.max(1);
            loop {
                if self.ready.is_empty() {
                    self.poll(max).await?;
                }
                if !self.ready.is_empty() {
                    self.hand_out(max, batch);
                    return Ok(());
                }
                if self.member.as_ref().is_some_and(|m| m.ended()) {
                    batch.ended = true;
                    return Ok(());
                }
                if wait == Wait::Briefly {
                    return Ok(());
                }
            }
        })
    }

    fn commit<'a>(
        &'a mut self,
        positions: &'a [Position],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>> {
        Box::pin(async move {
            let positions: Vec<(u32, u64)> =
                positions.iter().map(|p| (p.partition, p.offset)).collect();
            self.member().await?.commit(&positions).await
        })
    }

    fn again(&self, record: &RecordMeta, payloads: &[Vec<u8>]) -> Option<T> {
        let payload = payloads.get(record.payload as usize)?;
        self.codec.decode(payload).ok()
    }

    fn payload_codec(&self) -> Option<Codec> {
        Some(self.codec)
    }

    fn assignment(&self) -> Option<Vec<u32>> {
        self.member.as_ref().and_then(|member| member.assignment())
    }

    fn leave(mut self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        Box::pin(async move { self.member().await?.leave().await })
    }
}
