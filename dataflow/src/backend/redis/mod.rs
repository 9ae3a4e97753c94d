//! The Redis Streams bridge (`redis://host:port[/db]`, cargo feature `redis`).
//!
//! How Kafka's model maps onto Redis:
//!
//! - partition `p` of topic `t` is the stream `t:p`; each entry holds one record in the field
//!   `payload` (so `redis-cli XADD t:0 '*' payload '{"user":1}'` feeds a JSON topic);
//! - the topic's partition count is kept in the hash `dataflow:topic:t`; streams past it
//!   (`t:4` of a 4-partition topic, written by another tool) are refused, not ignored;
//! - a consumer group is a Redis consumer group on every stream of the topic; a member reads
//!   only the partitions it is assigned (live members, sorted, share partitions round-robin),
//!   each guarded by a lease key that expires if the member dies;
//! - a record's offset is its entry id packed as `ms << 20 | seq` when that fits (every id
//!   `XADD *` makes), else one more than the offset before it: any id Redis accepts is read
//!   (ids of other tools may not fit: `1-1048576`, `9000000000000-0`);
//! - commit is `XACK` of every entry up to the committed one; a member that takes a
//!   partition over first moves the previous owner's pending entries to itself
//!   (`XAUTOCLAIM`) and reads them again before new ones;
//! - retention: `max_len=N` (`XADD ... MAXLEN ~ N`) or `max_age_ms=N` (`MINID ~`) URL
//!   parameters;
//! - connections are re-established with capped, jittered backoff, for 30 s per operation
//!   (`retry_for_ms=N` to change it); an authentication or permission error is fatal at once;
//! - connecting, first answer included, gives up after 5 s (`connect_timeout_ms=N`); an
//!   answer that is not the Redis protocol is "not a Redis server" (fatal);
//! - before a member reads or a producer writes, every command it will run on every stream
//!   of the topic is tried in a form that changes nothing, so a missing permission (or a
//!   server that refuses writes) fails the start, not a batch already read;
//! - values that cannot work are refused: `lease_ms` under 100, `max_len=0`,
//!   `max_age_ms=0`, `connect_timeout_ms=0`.
//!
//! `rediss://` connects over TLS (rustls with ring), checking the server's certificate
//! against the system's roots, or against `ca_file=PATH` (PEM); `cert_file=PATH&key_file=PATH`
//! (PEM) present a client certificate to a server that asks for one (mutual TLS).
//!
//! Blocking reads (`XREADGROUP ... BLOCK`) use a connection of their own whose response
//! timeout is longer than the block time (the client's default of 500 ms would cut them).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;

use super::{
    BackendError, BackendUrl, BoxFuture, Delivery, RemoteBackend, RemoteMember, RemoteProducer,
    StartAt,
};

mod access;
mod link;
mod member;
mod position;
mod producer;
mod settings;

use link::{Link, Target};
use member::RedisMember;
use producer::RedisProducer;
use settings::Settings;

const BACKEND: &str = "redis";

/// Response timeout of the command connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis server holding topics as streams.
pub struct RedisBackend {
    target: Target,
    settings: Settings,
    link: tokio::sync::Mutex<Link>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("endpoint", &self.target.endpoint)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Connects to the server `url` names and checks the credentials (a `PING`). Fails fast:
    /// a bad URL or bad credentials at once, a server that does not answer within the
    /// connect timeout (`connect_timeout_ms`, 5 s by default).
    pub async fn connect(url: BackendUrl) -> Result<Self, BackendError> {
        let settings = Settings::from_url(&url)?;
        let target = settings::target(&url, &settings)?;
        let mut link = Link::new(target.clone(), RESPONSE_TIMEOUT);
        link.connect().await?;
        Ok(Self {
            target,
            settings,
            link: tokio::sync::Mutex::new(link),
        })
    }

    fn link(&self, response_timeout: Duration) -> Link {
        Link::new(self.target.clone(), response_timeout)
    }

    /// The partition count recorded for `topic`, if any.
    async fn recorded_partitions(&self, topic: &str) -> Result<Option<u32>, BackendError> {
        let mut link = self.link.lock().await;
        link.query(redis::cmd("HGET").arg(topic_key(topic)).arg("partitions"))
            .await
    }
}

/// The stream of partition `partition` of `topic`.
pub(crate) fn stream_key(topic: &str, partition: u32) -> String {
    format!("{topic}:{partition}")
}

/// The hash that records the partition count of `topic`.
fn topic_key(topic: &str) -> String {
    format!("dataflow:topic:{topic}")
}

impl RemoteBackend for RedisBackend {
    fn scheme(&self) -> &'static str {
        BACKEND
    }

    fn read_partition<'a>(
        &'a self,
        topic: &'a str,
        partition: u32,
        cursor: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<(Vec<Delivery>, String), BackendError>> {
        Box::pin(async move {
            let key = stream_key(topic, partition);
            // `(id` is exclusive (Redis 6.2 and later).
            let start = if cursor.is_empty() {
                "-".to_owned()
            } else {
                format!("({cursor}")
            };
            let reply: Value = {
                let mut link = self.link.lock().await;
                link.query(
                    redis::cmd("XRANGE")
                        .arg(&key)
                        .arg(start)
                        .arg("+")
                        .arg("COUNT")
                        .arg(max.max(1)),
                )
                .await?
            };
            let Value::Array(entries) = reply else {
                return Ok((Vec::new(), cursor.to_owned()));
            };
            let mut out = Vec::new();
            let mut next = cursor.to_owned();
            for entry in entries {
                let Value::Array(mut parts) = entry else {
                    continue;
                };
                let (Some(fields), Some(id)) = (parts.pop(), parts.pop()) else {
                    continue;
                };
                let Some(id) = bytes(id).and_then(|id| String::from_utf8(id).ok()) else {
                    continue;
                };
                let parsed = position::EntryId::parse(&id);
                let previous = out.last().map(|d: &Delivery| d.offset);
                out.push(Delivery {
                    partition,
                    offset: parsed.map_or(0, |p| p.position_after(previous)),
                    timestamp_nanos: parsed.map_or(0, position::EntryId::timestamp_nanos),
                    payload: member::payload(fields).unwrap_or_default(),
                    id: Some(id.clone()),
                });
                next = id;
            }
            if out.is_empty() {
                // Nothing after the cursor yet: a short wait, as a poll would.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok((out, next))
        })
    }

    fn ensure_topic<'a>(
        &'a self,
        topic: &'a str,
        partitions: u32,
    ) -> BoxFuture<'a, Result<u32, BackendError>> {
        Box::pin(async move {
            let key = topic_key(topic);
            let mut link = self.link.lock().await;
            let recorded: Option<u32> = link
                .query(redis::cmd("HGET").arg(&key).arg("partitions"))
                .await?;
            let count = recorded.unwrap_or(partitions).max(1);
            // Before the count is recorded, so that a refused declaration can be corrected.
            refuse_streams_beyond(&mut link, topic, count, recorded.is_some()).await?;
            if recorded.is_some() {
                return Ok(count);
            }
            let _: i64 = link
                .query(redis::cmd("HSETNX").arg(&key).arg("partitions").arg(count))
                .await?;
            // Another process may have recorded its count first: that one holds.
            let recorded: u32 = link
                .query(redis::cmd("HGET").arg(&key).arg("partitions"))
                .await?;
            Ok(recorded.max(1))
        })
    }

    fn producer<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteProducer>, BackendError>> {
        Box::pin(async move {
            let mut link = self.link(RESPONSE_TIMEOUT);
            let partitions = self.recorded_partitions(topic).await?.unwrap_or(1);
            access::check_write(&mut link, topic, partitions).await?;
            let producer = RedisProducer::new(topic, link, self.settings);
            Ok(Box::new(producer) as Box<dyn RemoteProducer>)
        })
    }

    fn join<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        partitions: u32,
        local_members: u32,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteMember>, BackendError>> {
        self.join_at(topic, group, partitions, local_members, StartAt::Earliest)
    }

    fn join_at<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        partitions: u32,
        _local_members: u32,
        start: StartAt,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteMember>, BackendError>> {
        Box::pin(async move {
            let commands = self.link(RESPONSE_TIMEOUT);
            // Longer than any BLOCK this member asks for (see the module docs).
            let blocking = self.link(super::POLL_WAIT * 4 + RESPONSE_TIMEOUT);
            let member = RedisMember::join(
                topic,
                group,
                partitions,
                commands,
                blocking,
                self.settings.lease,
                start,
            )
            .await?;
            Ok(Box::new(member) as Box<dyn RemoteMember>)
        })
    }
}

/// How many partition numbers past a topic's count [`refuse_streams_beyond`] looks at.
const BEYOND: u32 = 256;

/// Refuses a topic of `count` partitions whose key space holds streams past them (`t:4` when
/// `count` is 4, written by another tool, say): they would never be read. Looks at the next
/// [`BEYOND`] partition numbers, in one round trip.
async fn refuse_streams_beyond(
    link: &mut Link,
    topic: &str,
    count: u32,
    recorded: bool,
) -> Result<(), BackendError> {
    let mut pipe = redis::pipe();
    let numbers: Vec<u32> = (count..count.saturating_add(BEYOND)).collect();
    for &partition in &numbers {
        pipe.cmd("EXISTS").arg(stream_key(topic, partition));
    }
    let exists: Vec<bool> = link.query_pipe(&pipe).await?;
    let beyond: Vec<u32> = numbers
        .into_iter()
        .zip(exists)
        .filter_map(|(partition, exists)| exists.then_some(partition))
        .collect();
    let Some(&last) = beyond.last() else {
        return Ok(());
    };
    let listed: Vec<String> = beyond.iter().map(|&p| stream_key(topic, p)).collect();
    let fix = if recorded {
        format!(
            "`{}` records {count} partitions: raise it (`HSET {} partitions {}`)",
            topic_key(topic),
            topic_key(topic),
            last + 1
        )
    } else {
        format!("declare {} partitions", last + 1)
    };
    Err(BackendError::Topic {
        backend: BACKEND,
        topic: topic.to_owned(),
        message: format!(
            "streams {} exist beyond its {count} partitions and would never be read: {fix}, \
             or delete them",
            listed.join(", ")
        ),
    })
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The bytes of a bulk string (or of a simple string).
pub(crate) fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}
