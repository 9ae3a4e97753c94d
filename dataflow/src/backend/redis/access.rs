//! Checks, before any record moves, that the server lets this user run what a producer or a
//! group member will run, on every stream of the topic: a refusal then fails the start of a
//! pipeline (or of a task), not a batch already read.
//!
//! Each check is the real command with arguments that make it change nothing: Redis checks
//! permissions (`NOPERM`), and refuses writes on a full server (`OOM`) or a replica
//! (`READONLY`), before it looks at the arguments. `ACL DRYRUN` would need the `@admin`
//! permission, which a pipeline's user should not have.

use redis::{RedisResult, Value};

use super::link::Link;
use super::stream_key;
use crate::backend::BackendError;

/// A group no pipeline creates: commands on it stop at `NOGROUP` once permitted.
const NO_GROUP: &str = "dataflow:no-such-group";

/// Checks that `XADD` on every stream of `topic` (`partitions` of them) would be accepted.
pub(crate) async fn check_write(
    link: &mut Link,
    topic: &str,
    partitions: u32,
) -> Result<(), BackendError> {
    let mut pipe = redis::pipe();
    let mut probes = Vec::new();
    for partition in 0..partitions {
        let key = stream_key(topic, partition);
        // An id of 0-0 is refused after the permission checks, before the stream is made.
        pipe.cmd("XADD").arg(&key).arg("0-0").arg("payload").arg("");
        probes.push(format!("XADD {key}"));
    }
    check(link, &pipe, &probes, true).await
}

/// The keys a group member uses besides the streams.
pub(crate) struct MemberKeys<'a> {
    /// The sorted set of live members.
    pub(crate) members: &'a str,
    /// The lease key of each partition.
    pub(crate) leases: Vec<String>,
}

/// Checks that every command a member of `group` runs on the streams of `topic` and on its
/// `keys` would be accepted (the scripts' own calls are checked as the commands they run),
/// except the expiry and deletion of its own leases, which no probe can try harmlessly.
pub(crate) async fn check_read(
    link: &mut Link,
    topic: &str,
    group: &str,
    partitions: u32,
    keys: &MemberKeys<'_>,
) -> Result<(), BackendError> {
    let mut pipe = redis::pipe();
    let mut probes = Vec::new();
    for partition in 0..partitions {
        let key = stream_key(topic, partition);
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(NO_GROUP)
            .arg("probe")
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&key)
            .arg("0");
        probes.push(format!("XREADGROUP {key}"));
        pipe.cmd("XAUTOCLAIM")
            .arg(&key)
            .arg(NO_GROUP)
            .arg("probe")
            .arg(0)
            .arg("0-0")
            .arg("JUSTID");
        probes.push(format!("XAUTOCLAIM {key}"));
        pipe.cmd("XACK").arg(&key).arg(group).arg("0-0");
        probes.push(format!("XACK {key}"));
        pipe.cmd("XINFO").arg("CONSUMERS").arg(&key).arg(group);
        probes.push(format!("XINFO CONSUMERS {key}"));
        pipe.cmd("XGROUP")
            .arg("DELCONSUMER")
            .arg(&key)
            .arg(NO_GROUP)
            .arg("probe");
        probes.push(format!("XGROUP DELCONSUMER {key}"));
    }
    for lease in &keys.leases {
        // An expiry of 0 is refused after the permission checks: nothing is set.
        pipe.cmd("SET")
            .arg(lease)
            .arg("probe")
            .arg("NX")
            .arg("PX")
            .arg(0);
        probes.push(format!("SET {lease}"));
        pipe.cmd("GET").arg(lease);
        probes.push(format!("GET {lease}"));
    }
    pipe.cmd("ZREM").arg(keys.members).arg(NO_GROUP);
    probes.push(format!("ZREM {}", keys.members));
    pipe.cmd("ZSCORE").arg(keys.members).arg(NO_GROUP);
    probes.push(format!("ZSCORE {}", keys.members));
    pipe.cmd("EVAL").arg("return 1").arg(0);
    probes.push("EVAL".to_owned());
    check(link, &pipe, &probes, false).await
}

/// Runs `pipe` (one command per entry of `probes`) and fails on the first refusal:
/// a missing permission always, and with `write`, any refusal of a write (`OOM`,
/// `READONLY`) too.
async fn check(
    link: &mut Link,
    pipe: &redis::Pipeline,
    probes: &[String],
    write: bool,
) -> Result<(), BackendError> {
    let mut pipe = pipe.clone();
    let replies: Vec<RedisResult<Value>> = link.query_pipe(pipe.ignore_errors()).await?;
    for (reply, probe) in replies.iter().zip(probes) {
        let Err(err) = reply else { continue };
        let refused = match err.code() {
            Some("NOPERM") => true,
            Some("OOM" | "READONLY" | "MISCONF") => write,
            _ => false,
        };
        if refused {
            return Err(match link.classify(err) {
                BackendError::Auth { backend, message } => BackendError::Auth {
                    backend,
                    message: format!("{message} (checked with `{probe}` before starting)"),
                },
                BackendError::Server { backend, message } => BackendError::Server {
                    backend,
                    message: format!("{message} (checked with `{probe}` before starting)"),
                },
                other => other,
            });
        }
    }
    Ok(())
}
