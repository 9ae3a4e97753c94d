//! The raw `redis` client (X2's peer), and what a Redis peer needs.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncConnectionConfig, AsyncTypedCommands, Value};

use crate::servers::RedisServer;
use crate::workload::{BATCH, GROUP, READ_WAIT};

/// The raw client's two connections: commands (`XADD`, `XACK`, checks), and blocking reads.
#[derive(Clone)]
pub struct Raw {
    /// `XADD`, `XACK` and the checks.
    pub commands: MultiplexedConnection,
    /// `XREADGROUP ... BLOCK`, with a response timeout longer than the block.
    pub blocking: MultiplexedConnection,
}

impl Raw {
    /// Opens both connections to the server at `url`.
    pub async fn connect(url: &str) -> Self {
        let client = redis::Client::open(url).expect("redis url");
        let commands = client
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .expect("raw command connection");
        // Longer than BLOCK: the client's default of 500 ms would cut a blocked read.
        let blocking = client
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new()
                    .set_response_timeout(Some(READ_WAIT * 10))
                    .set_connection_timeout(Some(Duration::from_secs(2))),
            )
            .await
            .expect("raw blocking connection");
        Self { commands, blocking }
    }

    /// Checks that stream `key` holds `n` entries, none pending in the group, then deletes
    /// `key` and `extra` keys.
    pub async fn check_and_drop(&self, key: &str, n: u64, extra: &[String]) {
        let mut con = self.commands.clone();
        let len = con.xlen(key).await.expect("XLEN");
        assert_eq!(
            len as u64, n,
            "{key}: the stream holds {len} entries, not {n}"
        );
        let pending = con.xpending(key, GROUP).await.expect("XPENDING").count();
        assert_eq!(
            pending, 0,
            "{key}: {pending} entries were never acknowledged"
        );
        let mut keys = vec![key.to_owned()];
        keys.extend_from_slice(extra);
        con.del(keys).await.expect("DEL");
    }
}

/// What a Redis peer needs.
pub struct Redis {
    /// The server (for its process id, and to stop it last).
    pub server: RedisServer,
    /// `redis://127.0.0.1:PORT`, for the bridge.
    pub url: String,
    /// The raw client, also used to check what the bridge left in the server.
    pub raw: Raw,
}

/// Keys the bridge keeps for `topic` besides its stream (lease keys go when the reader
/// leaves).
pub fn bridge_keys(topic: &str) -> Vec<String> {
    vec![
        format!("dataflow:topic:{topic}"),
        format!("dataflow:members:{GROUP}:{topic}"),
    ]
}

/// The raw reader's `XREADGROUP GROUP bench raw-1 COUNT 100 BLOCK 200`.
pub fn read_options() -> StreamReadOptions {
    StreamReadOptions::default()
        .group(GROUP, "raw-1")
        .count(BATCH as usize)
        .block(READ_WAIT.as_millis() as usize)
}

/// Calls `f` with the payload of every entry of an `XREADGROUP` reply, in order, and puts
/// their ids in `ids` (emptied first) for the `XACK`.
pub fn for_each_payload(
    reply: Option<StreamReadReply>,
    ids: &mut Vec<String>,
    mut f: impl FnMut(&[u8]),
) {
    ids.clear();
    for stream in reply.map(|r| r.keys).unwrap_or_default() {
        for mut entry in stream.ids {
            let Some(Value::BulkString(payload)) = entry.map.remove("payload") else {
                panic!("entry {} has no payload", entry.id);
            };
            f(&payload);
            ids.push(entry.id);
        }
    }
}
