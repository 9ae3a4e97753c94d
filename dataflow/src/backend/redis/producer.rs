//! Appends to the streams of one topic, and tells how far behind its slowest group is.

use std::collections::HashMap;

use redis::Value;

use super::link::Link;
use super::settings::Settings;
use super::{now_millis, stream_key};
use crate::backend::{BackendError, BoxFuture, RemoteProducer};

/// Appends to the streams of one topic, a pipelined `XADD` per batch.
pub(crate) struct RedisProducer {
    topic: String,
    link: Link,
    settings: Settings,
}

impl RedisProducer {
    pub(crate) fn new(topic: &str, link: Link, settings: Settings) -> Self {
        Self {
            topic: topic.to_owned(),
            link,
            settings,
        }
    }
}

impl RemoteProducer for RedisProducer {
    fn send<'a>(
        &'a mut self,
        partition: u32,
        payloads: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let key = stream_key(&self.topic, partition);
            let mut pipe = redis::pipe();
            let min_id = self.settings.max_age.map(|age| {
                let now = now_millis();
                now.saturating_sub(age.as_millis() as u64)
            });
            for payload in payloads {
                let cmd = pipe.cmd("XADD").arg(&key);
                if let Some(max_len) = self.settings.max_len {
                    cmd.arg("MAXLEN").arg("~").arg(max_len);
                } else if let Some(min_id) = min_id {
                    cmd.arg("MINID").arg("~").arg(min_id);
                }
                cmd.arg("*").arg("payload").arg(payload.as_slice()).ignore();
            }
            // A refusal of any of them (NOPERM, OOM, READONLY) is the batch's error.
            self.link.query_pipe::<()>(&pipe).await
        })
    }

    fn backlog(&mut self, partition: u32) -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
        Box::pin(async move {
            let key = stream_key(&self.topic, partition);
            let groups: Vec<HashMap<String, Value>> = self
                .link
                .query(redis::cmd("XINFO").arg("GROUPS").arg(&key))
                .await?;
            Ok(groups.iter().filter_map(group_backlog).max())
        })
    }
}

/// A group's backlog in `XINFO GROUPS`: `lag` (entries not delivered yet; Redis 7) plus
/// `pending` (delivered, not acknowledged). `None` when Redis cannot tell the lag (before
/// 7.0, or after entries were deleted from the middle of the stream).
fn group_backlog(group: &HashMap<String, Value>) -> Option<u64> {
    let number = |field: &str| match group.get(field)? {
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    };
    Some(number("lag")? + number("pending")?)
}
