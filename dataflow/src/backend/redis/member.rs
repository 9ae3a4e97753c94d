//! A member of a consumer group on Redis Streams: membership by heartbeat, partitions by
//! lease, takeover by `XAUTOCLAIM`, commit by `XACK`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use redis::Value;
use tokio::time::Instant;

use super::access::{self, MemberKeys};
use super::position::EntryId;
use super::{Link, bytes, now_millis, stream_key};
use crate::backend::{BackendError, BoxFuture, Delivery, RemoteMember, StartAt};

/// Extends a lease only if this member still holds it.
const RENEW: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
                     return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/// Deletes a lease only if this member holds it.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
                       return redis.call('del', KEYS[1]) else return 0 end";
/// Deletes the group's consumers on stream `KEYS[1]` that have nothing pending and belong to
/// no live member (`KEYS[2]`, scores = lease ends, `ARGV[3]` = now), except this one
/// (`ARGV[2]`): members that died or rejoined leave their consumers behind. In one script, so
/// that no entry is delivered to a consumer between the check and the delete (deleting a
/// consumer drops its pending entries).
const FORGET_ENDED: &str = r"
local deleted = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, pending
  for i = 1, #consumer, 2 do
    if consumer[i] == 'name' then name = consumer[i + 1] end
    if consumer[i] == 'pending' then pending = consumer[i + 1] end
  end
  if name ~= ARGV[2] and pending == 0 then
    local lease_end = redis.call('ZSCORE', KEYS[2], name)
    if not lease_end or tonumber(lease_end) < tonumber(ARGV[3]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
      deleted = deleted + 1
    end
  end
end
return deleted";

/// A partition this member holds the lease of.
struct Owned {
    /// Entries delivered to this member and not acknowledged may wait in its pending list
    /// (taken over, or read before a lost connection): read those first.
    pending: bool,
}

pub(crate) struct RedisMember {
    id: String,
    topic: String,
    group: String,
    partitions: u32,
    commands: Link,
    blocking: Link,
    lease: Duration,
    owned: BTreeMap<u32, Owned>,
    /// Entries returned and not yet acknowledged, per partition, in order: their positions
    /// and ids.
    unacked: HashMap<u32, VecDeque<(u64, EntryId)>>,
    /// The last position returned in each partition: the next is above it (see
    /// [`position`](super::position)).
    last_position: HashMap<u32, u64>,
    last_rebalance: Option<Instant>,
}

impl RedisMember {
    pub(crate) async fn join(
        topic: &str,
        group: &str,
        partitions: u32,
        mut commands: Link,
        blocking: Link,
        lease: Duration,
        start: StartAt,
    ) -> Result<Self, BackendError> {
        // A group reads the entries after its last delivered id.
        let after = match start {
            StartAt::Latest => "$".to_owned(),
            StartAt::Timestamp(at) => {
                let millis = at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                match millis.checked_sub(1) {
                    Some(before) => format!("{before}-{}", u64::MAX),
                    None => "0".to_owned(),
                }
            }
            _ => "0".to_owned(),
        };
        for partition in 0..partitions {
            let created = commands
                .query::<()>(
                    redis::cmd("XGROUP")
                        .arg("CREATE")
                        .arg(stream_key(topic, partition))
                        .arg(group)
                        .arg(&after)
                        .arg("MKSTREAM"),
                )
                .await;
            match created {
                Err(BackendError::Server { message, .. }) if message.contains("BUSYGROUP") => {}
                other => other?,
            }
        }
        let mut member = Self {
            id: format!("{}-{:08x}", process_id(), rand::random::<u32>()),
            topic: topic.to_owned(),
            group: group.to_owned(),
            partitions,
            commands,
            blocking,
            lease,
            owned: BTreeMap::new(),
            unacked: HashMap::new(),
            last_position: HashMap::new(),
            last_rebalance: None,
        };
        let members = member.members_key();
        let keys = MemberKeys {
            members: &members,
            leases: (0..partitions).map(|p| member.lease_key(p)).collect(),
        };
        access::check_read(&mut member.commands, topic, group, partitions, &keys).await?;
        member.heartbeat().await?;
        Ok(member)
    }

    fn members_key(&self) -> String {
        format!("dataflow:members:{}:{}", self.group, self.topic)
    }

    fn lease_key(&self, partition: u32) -> String {
        format!("dataflow:lease:{}:{}:{partition}", self.group, self.topic)
    }

    /// Registers this member as alive for one lease; returns the live members, sorted. One
    /// round trip.
    async fn heartbeat(&mut self) -> Result<Vec<String>, BackendError> {
        let now = now_millis();
        let key = self.members_key();
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(&key)
            .arg(now + self.lease.as_millis() as u64)
            .arg(&self.id)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1);
        let (mut live,): (Vec<String>,) = self.commands.query_pipe(&pipe).await?;
        live.sort();
        Ok(live)
    }

    /// Heartbeat, then hand back partitions no longer assigned, renew the others, and take
    /// the newly assigned ones whose lease is free.
    async fn rebalance(&mut self) -> Result<(), BackendError> {
        let due = self
            .last_rebalance
            .is_none_or(|at| at.elapsed() >= self.lease / 5 || self.owned.is_empty());
        if !due {
            return Ok(());
        }
        self.last_rebalance = Some(Instant::now());
        let live = self.heartbeat().await?;
        let owners = assignment(&live, self.partitions);
        let me = self.id.clone();
        let assigned = |p: u32| owners.get(p as usize).is_some_and(|o| *o == me);
        let lease_ms = self.lease.as_millis() as u64;
        for partition in self.owned.keys().copied().collect::<Vec<_>>() {
            let key = self.lease_key(partition);
            let keep = if assigned(partition) {
                let renewed: i64 = self
                    .commands
                    .query(
                        redis::cmd("EVAL")
                            .arg(RENEW)
                            .arg(1)
                            .arg(&key)
                            .arg(&self.id)
                            .arg(lease_ms),
                    )
                    .await?;
                renewed == 1
            } else {
                self.release(partition).await?;
                false
            };
            if !keep {
                self.owned.remove(&partition);
                self.unacked.remove(&partition);
            }
        }
        for partition in (0..self.partitions).filter(|&p| assigned(p)) {
            if self.owned.contains_key(&partition) {
                continue;
            }
            let taken: Option<String> = self
                .commands
                .query(
                    redis::cmd("SET")
                        .arg(self.lease_key(partition))
                        .arg(&self.id)
                        .arg("NX")
                        .arg("PX")
                        .arg(lease_ms),
                )
                .await?;
            if taken.is_some() {
                self.claim_pending(partition).await?;
                self.forget_ended(partition).await?;
                self.owned.insert(partition, Owned { pending: true });
            }
        }
        Ok(())
    }

    /// Gives up the lease of `partition`, if this member still holds it.
    async fn release(&mut self, partition: u32) -> Result<(), BackendError> {
        let release = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.lease_key(partition))
            .arg(&self.id)
            .clone();
        self.commands.query::<i64>(&release).await.map(drop)
    }

    /// Moves every entry pending in the group for `partition` (delivered to a member that
    /// died or handed the partition over) to this member.
    async fn claim_pending(&mut self, partition: u32) -> Result<(), BackendError> {
        let key = stream_key(&self.topic, partition);
        let mut cursor = "0-0".to_owned();
        loop {
            let reply: Value = self
                .commands
                .query(
                    redis::cmd("XAUTOCLAIM")
                        .arg(&key)
                        .arg(&self.group)
                        .arg(&self.id)
                        .arg(0)
                        .arg(&cursor)
                        .arg("COUNT")
                        .arg(1000)
                        .arg("JUSTID"),
                )
                .await?;
            let next = match reply {
                Value::Array(mut parts) if !parts.is_empty() => {
                    bytes(parts.swap_remove(0)).and_then(|b| String::from_utf8(b).ok())
                }
                _ => None,
            };
            match next {
                Some(next) if next != "0-0" => cursor = next,
                _ => return Ok(()),
            }
        }
    }

    /// Once the pending entries of `partition` are this member's: deletes the consumers that
    /// ended members left on its stream, so that `XINFO CONSUMERS` does not grow with every
    /// restart (see [`FORGET_ENDED`]).
    async fn forget_ended(&mut self, partition: u32) -> Result<(), BackendError> {
        let forget = redis::cmd("EVAL")
            .arg(FORGET_ENDED)
            .arg(2)
            .arg(stream_key(&self.topic, partition))
            .arg(self.members_key())
            .arg(&self.group)
            .arg(&self.id)
            .arg(now_millis())
            .clone();
        self.commands.query::<i64>(&forget).await.map(drop)
    }

    /// `XREADGROUP` of `ids` (`0`: this member's pending entries; `>`: new ones) on the
    /// owned partitions `partitions`.
    async fn read(
        &mut self,
        partitions: &[u32],
        id: &str,
        max: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, BackendError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.id)
            .arg("COUNT")
            .arg(max);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS");
        for &p in partitions {
            cmd.arg(stream_key(&self.topic, p));
        }
        for _ in partitions {
            cmd.arg(id);
        }
        let link = if block.is_some() {
            &mut self.blocking
        } else {
            &mut self.commands
        };
        let reply: Value = link.query_once(&cmd).await?;
        let mut out = Vec::new();
        let mut deleted = Vec::new();
        for (key, entries) in streams(reply) {
            let Some(partition) = key
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u32>().ok())
            else {
                continue;
            };
            for (entry_id, payload) in entries {
                let Some(id) = EntryId::parse(&entry_id) else {
                    return Err(BackendError::Server {
                        backend: super::BACKEND,
                        message: format!("`{key}` returned `{entry_id}`, not a stream entry id"),
                    });
                };
                match payload {
                    Some(payload) => {
                        let last = self.last_position.get(&partition).copied();
                        let offset = id.position_after(last);
                        self.last_position.insert(partition, offset);
                        self.unacked
                            .entry(partition)
                            .or_default()
                            .push_back((offset, id));
                        out.push(Delivery {
                            partition,
                            offset,
                            timestamp_nanos: id.timestamp_nanos(),
                            payload,
                            id: Some(entry_id),
                        });
                    }
                    // Trimmed away while pending: nothing to read, acknowledge it.
                    None => deleted.push((partition, entry_id)),
                }
            }
        }
        for (partition, entry_id) in deleted {
            let _: i64 = self
                .commands
                .query(
                    redis::cmd("XACK")
                        .arg(stream_key(&self.topic, partition))
                        .arg(&self.group)
                        .arg(entry_id),
                )
                .await?;
        }
        Ok(out)
    }

    async fn poll_inner(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BackendError> {
        self.rebalance().await?;
        if self.owned.is_empty() {
            tokio::time::sleep(wait).await;
            return Ok(Vec::new());
        }
        let pending: Vec<u32> = self
            .owned
            .iter()
            .filter(|(_, o)| o.pending)
            .map(|(&p, _)| p)
            .collect();
        for partition in pending {
            let batch = self.read(&[partition], "0", max, None).await?;
            if batch.is_empty() {
                if let Some(owned) = self.owned.get_mut(&partition) {
                    owned.pending = false;
                }
            } else {
                return Ok(batch);
            }
        }
        let partitions: Vec<u32> = self.owned.keys().copied().collect();
        match self.read(&partitions, ">", max, Some(wait)).await {
            Ok(batch) => Ok(batch),
            Err(BackendError::Unreachable { .. }) => {
                // The reply may be lost after the entries were delivered to this member:
                // they wait in its pending list, read first once the server is back.
                self.owned.values_mut().for_each(|o| o.pending = true);
                self.last_rebalance = None;
                Ok(Vec::new())
            }
            Err(other) => Err(other),
        }
    }
}

/// This process's part of member ids: its pid (for people reading `XINFO CONSUMERS` and the
/// lease keys) and a random instance number (pids repeat across hosts).
fn process_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{}.{:08x}", std::process::id(), rand::random::<u32>()))
}

/// The owner of each partition among the live members (ids `process-member`, sorted):
/// partitions go round-robin to processes first, then to the members of each, so that two
/// processes of one pipeline split the work evenly however many tasks each runs.
fn assignment(live: &[String], partitions: u32) -> Vec<String> {
    let mut processes: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for member in live {
        let process = member.rsplit_once('-').map_or(member.as_str(), |(p, _)| p);
        processes.entry(process).or_default().push(member);
    }
    if processes.is_empty() {
        return Vec::new();
    }
    let processes: Vec<Vec<&str>> = processes.into_values().collect();
    (0..partitions as usize)
        .map(|p| {
            let members = &processes[p % processes.len()];
            members[(p / processes.len()) % members.len()].to_owned()
        })
        .collect()
}

/// An entry of a reply: its id, and its payload (`None` for an entry deleted while pending).
pub(super) type Entry = (String, Option<Vec<u8>>);

/// The `(stream key, entries)` of an `XREADGROUP` reply (RESP2 or RESP3).
fn streams(reply: Value) -> Vec<(String, Vec<Entry>)> {
    let pairs: Vec<(Value, Value)> = match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let entries = kv.pop()?;
                    Some((kv.pop()?, entries))
                }
                _ => None,
            })
            .collect(),
        Value::Map(map) => map,
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .filter_map(|(key, entries)| {
            let key = String::from_utf8(bytes(key)?).ok()?;
            let Value::Array(entries) = entries else {
                return Some((key, Vec::new()));
            };
            let entries = entries
                .into_iter()
                .filter_map(|entry| {
                    let Value::Array(mut parts) = entry else {
                        return None;
                    };
                    if parts.len() != 2 {
                        return None;
                    }
                    let fields = parts.pop()?;
                    let id = String::from_utf8(bytes(parts.pop()?)?).ok()?;
                    Some((id, payload(fields)))
                })
                .collect();
            Some((key, entries))
        })
        .collect()
}

/// The `payload` field of an entry (an entry written by another tool with one field only:
/// that field's value).
pub(super) fn payload(fields: Value) -> Option<Vec<u8>> {
    let fields: Vec<Value> = match fields {
        Value::Array(fields) => fields,
        Value::Map(map) => map.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return None,
    };
    let mut only = None;
    let mut iter = fields.into_iter();
    let mut count = 0;
    while let (Some(name), Some(value)) = (iter.next(), iter.next()) {
        count += 1;
        let name = bytes(name)?;
        let value = bytes(value)?;
        if name == b"payload" {
            return Some(value);
        }
        only = Some(value);
    }
    if count == 1 { only } else { Some(Vec::new()) }
}

impl RemoteMember for RedisMember {
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, BackendError>> {
        Box::pin(self.poll_inner(max, wait))
    }

    fn commit<'a>(
        &'a mut self,
        positions: &'a [(u32, u64)],
    ) -> BoxFuture<'a, Result<Vec<u32>, BackendError>> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            let mut any = false;
            let mut refused = Vec::new();
            for &(partition, offset) in positions {
                // A partition handed over meanwhile: its new owner claimed what this member
                // had read and reads it again.
                if !self.owned.contains_key(&partition) {
                    refused.push(partition);
                    continue;
                }
                let Some(unacked) = self.unacked.get_mut(&partition) else {
                    continue;
                };
                let mut ids = Vec::new();
                while unacked.front().is_some_and(|&(o, _)| o <= offset) {
                    let (_, id) = unacked.pop_front().expect("checked");
                    ids.push(id.to_string());
                }
                if !ids.is_empty() {
                    any = true;
                    pipe.cmd("XACK")
                        .arg(stream_key(&self.topic, partition))
                        .arg(&self.group)
                        .arg(ids)
                        .ignore();
                }
            }
            if any {
                self.commands.query_pipe::<()>(&pipe).await?;
            }
            Ok(refused)
        })
    }

    fn leave(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            let key = self.members_key();
            let _: i64 = self
                .commands
                .query(redis::cmd("ZREM").arg(&key).arg(&self.id))
                .await?;
            for partition in std::mem::take(&mut self.owned).into_keys() {
                self.release(partition).await?;
            }
            Ok(())
        })
    }

    fn assignment(&self) -> Option<Vec<u32>> {
        Some(self.owned.keys().copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_split_between_processes_first() {
        let live: Vec<String> = [
            "1.a-1", "1.a-2", "1.a-3", "1.a-4", "2.b-1", "2.b-2", "2.b-3", "2.b-4",
        ]
        .map(str::to_owned)
        .into();
        let owners = assignment(&live, 4);
        assert_eq!(owners, ["1.a-1", "2.b-1", "1.a-2", "2.b-2"]);
        let owners = assignment(&live[4..], 4);
        assert_eq!(owners, ["2.b-1", "2.b-2", "2.b-3", "2.b-4"]);
        assert!(assignment(&[], 4).is_empty());
    }
}
