//! The Redis Streams bridge (`redis://host:port[/db]`, cargo feature `redis`).
//!
//! How Kafka's model maps onto Redis:
//!
//! - partition `p` of topic `t` is the stream `t:p`; each entry holds one record in the field
//!   `payload` (so `redis-cli XADD t:0 '*' payload '{"user":1}'` feeds a JSON topic);
//! - the topic's partition count is kept in the hash `dataflow:topic:t`;
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
//!   (`retry_for_ms=N` to change it); an authentication or permission error is fatal at once.
//!
//! `rediss://` connects over TLS (rustls with ring), checking the server's certificate
//! against the system's roots, or against `ca_file=PATH` (PEM); `cert_file=PATH&key_file=PATH`
//! (PEM) present a client certificate to a server that asks for one (mutual TLS).
//!
//! Blocking reads (`XREADGROUP ... BLOCK`) use a connection of their own whose response
//! timeout is longer than the block time (the client's default of 500 ms would cut them).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisError, Value};

use super::{BackendError, BackendUrl, BoxFuture, RemoteBackend, RemoteMember, RemoteProducer};

mod member;
mod position;

use member::RedisMember;

const BACKEND: &str = "redis";

/// How long a lost connection is retried before the operation fails (`retry_for_ms`).
const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// How long `connect` waits for a first answer.
const CONNECT_FOR: Duration = Duration::from_secs(5);
/// Backoff between reconnection attempts: doubles from the first to the cap, with jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(20);
const BACKOFF_CAP: Duration = Duration::from_secs(1);
/// Response timeout of the command connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL parameters of the Redis bridge (besides the credentials).
const PARAMS: [&str; 8] = [
    "max_len",
    "max_age_ms",
    "lease_ms",
    "retry_for_ms",
    "ca_file",
    "cert_file",
    "key_file",
    "insecure",
];

/// The PEM files a `rediss://` URL names: a private certificate authority (`ca_file`, instead
/// of the system's roots) and a client identity for mutual TLS (`cert_file` with
/// `key_file`). `None` when it names none.
fn tls_files(url: &BackendUrl, tls: bool) -> Result<Option<redis::TlsCertificates>, BackendError> {
    let read = |key: &str, what: &str| -> Result<Option<Vec<u8>>, BackendError> {
        url.param(key)
            .map(|file| {
                std::fs::read(file).map_err(|e| BackendError::Tls {
                    backend: BACKEND,
                    message: format!("cannot read {what} `{file}` ({key}): {e}"),
                })
            })
            .transpose()
    };
    let named = ["ca_file", "cert_file", "key_file"]
        .into_iter()
        .filter(|key| url.param(key).is_some())
        .collect::<Vec<_>>();
    if named.is_empty() {
        return Ok(None);
    }
    let invalid = |reason: String| BackendError::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    if !tls {
        return Err(invalid(format!(
            "{} only apply to TLS: use rediss://",
            named.join(", ")
        )));
    }
    let root_cert = read("ca_file", "the CA certificate")?;
    let client_tls = match (
        read("cert_file", "the client certificate")?,
        read("key_file", "the client key")?,
    ) {
        (Some(client_cert), Some(client_key)) => Some(redis::ClientTlsConfig {
            client_cert,
            client_key,
        }),
        (None, None) => None,
        _ => {
            return Err(invalid(
                "cert_file and key_file go together (a client identity for mutual TLS)".into(),
            ));
        }
    };
    Ok(Some(redis::TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// Settings read from the URL's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// `MAXLEN ~ n` on every append.
    max_len: Option<u64>,
    /// `MINID ~ (now - age)` on every append.
    max_age: Option<Duration>,
    /// A member whose heartbeat is older than this is dead; its leases expire after it.
    lease: Duration,
    /// How long an operation retries a lost connection before it fails.
    reconnect_for: Duration,
}

/// A Redis server holding topics as streams.
pub struct RedisBackend {
    client: Client,
    endpoint: String,
    settings: Settings,
    link: tokio::sync::Mutex<Link>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("endpoint", &self.endpoint)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Connects to the server `url` names and checks the credentials (a `PING`). Fails fast:
    /// bad credentials at once, an unreachable server after a few seconds.
    pub async fn connect(url: BackendUrl) -> Result<Self, BackendError> {
        // A misspelt parameter would otherwise be ignored without a word.
        if let Some((key, _)) = url
            .params
            .iter()
            .find(|(k, _)| !PARAMS.contains(&k.as_str()))
        {
            return Err(BackendError::InvalidUrl {
                url: url.to_string(),
                reason: format!(
                    "unknown parameter `{key}` (Redis takes {}, username, password_env, \
                     password_file)",
                    PARAMS.join(", ")
                ),
            });
        }
        let endpoint = url.hosts[0].clone();
        let (host, port) = endpoint
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| BackendError::InvalidUrl {
                url: url.to_string(),
                reason: "expected host:port".into(),
            })?;
        let db = if url.path.is_empty() {
            0
        } else {
            url.path
                .parse::<i64>()
                .map_err(|_| BackendError::InvalidUrl {
                    url: url.to_string(),
                    reason: format!("`{}` is not a database number", url.path),
                })?
        };
        let tls = url.scheme == "rediss";
        if tls {
            // rustls needs a process-wide crypto provider; an error means one is set already.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let addr = if tls {
            ConnectionAddr::TcpTls {
                host,
                port,
                // `insecure=true` skips certificate checks (self-signed test servers only).
                insecure: url.param("insecure") == Some("true"),
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        };
        let info = addr.into_connection_info().map_err(|e| server(&e))?;
        let mut redis = info.redis_settings().clone().set_db(db);
        if let Some(user) = &url.username {
            redis = redis.set_username(user);
        }
        if let Some(password) = &url.password {
            redis = redis.set_password(password.expose());
        }
        let info = info.set_redis_settings(redis);
        let client = match tls_files(&url, tls)? {
            Some(certificates) => Client::build_with_tls(info, certificates),
            None => Client::open(info),
        }
        .map_err(|e| tls_or_server(&e, tls))?;
        let number = |key: &str| -> Result<Option<u64>, BackendError> {
            url.param(key)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| BackendError::InvalidUrl {
                        url: url.to_string(),
                        reason: format!("`{key}={v}` is not a number"),
                    })
                })
                .transpose()
        };
        let settings = Settings {
            max_len: number("max_len")?,
            max_age: number("max_age_ms")?.map(Duration::from_millis),
            lease: number("lease_ms")?.map_or(Duration::from_secs(5), Duration::from_millis),
            reconnect_for: number("retry_for_ms")?.map_or(RECONNECT_FOR, Duration::from_millis),
        };
        let mut link = Link::new(
            client.clone(),
            endpoint.clone(),
            RESPONSE_TIMEOUT,
            settings.reconnect_for,
        );
        link.connect_within(CONNECT_FOR).await?;
        let _: String = link.query(&redis::cmd("PING")).await?;
        Ok(Self {
            client,
            endpoint,
            settings,
            link: tokio::sync::Mutex::new(link),
        })
    }

    fn link(&self, response_timeout: Duration) -> Link {
        Link::new(
            self.client.clone(),
            self.endpoint.clone(),
            response_timeout,
            self.settings.reconnect_for,
        )
    }
}

/// The stream of partition `partition` of `topic`.
pub(crate) fn stream_key(topic: &str, partition: u32) -> String {
    format!("{topic}:{partition}")
}

impl RemoteBackend for RedisBackend {
    fn scheme(&self) -> &'static str {
        BACKEND
    }

    fn ensure_topic<'a>(
        &'a self,
        topic: &'a str,
        partitions: u32,
    ) -> BoxFuture<'a, Result<u32, BackendError>> {
        Box::pin(async move {
            let key = format!("dataflow:topic:{topic}");
            let mut link = self.link.lock().await;
            let _: i64 = link
                .query(
                    redis::cmd("HSETNX")
                        .arg(&key)
                        .arg("partitions")
                        .arg(partitions.max(1)),
                )
                .await?;
            let existing: u32 = link
                .query(redis::cmd("HGET").arg(&key).arg("partitions"))
                .await?;
            Ok(existing.max(1))
        })
    }

    fn producer<'a>(
        &'a self,
        _topic: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteProducer>, BackendError>> {
        Box::pin(async move {
            let producer = RedisProducer {
                topic: _topic.to_owned(),
                link: self.link(RESPONSE_TIMEOUT),
                settings: self.settings,
            };
            Ok(Box::new(producer) as Box<dyn RemoteProducer>)
        })
    }

    fn join<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        partitions: u32,
        _local_members: u32,
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
            )
            .await?;
            Ok(Box::new(member) as Box<dyn RemoteMember>)
        })
    }
}

/// Appends to the streams of one topic, a pipelined `XADD` per batch.
struct RedisProducer {
    topic: String,
    link: Link,
    settings: Settings,
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

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One connection, re-established on demand: queries retry a lost connection with capped,
/// jittered backoff for `reconnect_for` ([`RECONNECT_FOR`] unless the URL says
/// `retry_for_ms`), and fail at once on anything else.
pub(crate) struct Link {
    client: Client,
    endpoint: String,
    response_timeout: Duration,
    reconnect_for: Duration,
    connection: Option<MultiplexedConnection>,
}

impl Link {
    fn new(
        client: Client,
        endpoint: String,
        response_timeout: Duration,
        reconnect_for: Duration,
    ) -> Self {
        Self {
            client,
            endpoint,
            response_timeout,
            reconnect_for,
            connection: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, RedisError> {
        if self.connection.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(self.response_timeout));
            let connection = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("set above"))
    }

    /// Connects, retrying a refused or dropped connection for `within`.
    async fn connect_within(&mut self, within: Duration) -> Result<(), BackendError> {
        self.query_within::<String>(&redis::cmd("PING"), within)
            .await
            .map(drop)
    }

    /// Runs `cmd`, reconnecting as needed.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
    ) -> Result<T, BackendError> {
        self.query_within(cmd, self.reconnect_for).await
    }

    async fn query_within<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
        within: Duration,
    ) -> Result<T, BackendError> {
        let mut retry = Retry::new(within);
        loop {
            let result = match self.connection().await {
                Ok(connection) => cmd.query_async(connection).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(err) => self.recover(err, &mut retry).await?,
            }
        }
    }

    /// Runs `cmd` with no retry (a read whose loss would be silent must not be repeated).
    pub(crate) async fn query_once<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
    ) -> Result<T, BackendError> {
        let result = match self.connection().await {
            Ok(connection) => cmd.query_async(connection).await,
            Err(err) => Err(err),
        };
        result.map_err(|err| {
            if is_connection_error(&err) {
                self.connection = None;
            }
            classify(&err, &self.endpoint)
        })
    }

    /// Runs `pipe`, reconnecting as needed; `T` holds the replies not ignored.
    pub(crate) async fn query_pipe<T: redis::FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
    ) -> Result<T, BackendError> {
        let mut retry = Retry::new(self.reconnect_for);
        loop {
            let result = match self.connection().await {
                Ok(connection) => pipe.query_async::<T>(connection).await,
                Err(err) => Err(err),
            };
            match result {
                Ok(replies) => return Ok(replies),
                Err(err) => self.recover(err, &mut retry).await?,
            }
        }
    }

    /// After `err`: waits before the next attempt if the connection was lost and time
    /// remains; otherwise returns the error.
    async fn recover(&mut self, err: RedisError, retry: &mut Retry) -> Result<(), BackendError> {
        if !is_connection_error(&err) {
            return Err(classify(&err, &self.endpoint));
        }
        self.connection = None;
        if tokio::time::Instant::now() + retry.backoff > retry.deadline {
            return Err(classify(&err, &self.endpoint));
        }
        // Jitter on the upper half: processes that lost the server together do not come
        // back in step.
        let jitter = rand::random_range(0.5..=1.0);
        tokio::time::sleep(retry.backoff.mul_f64(jitter)).await;
        retry.backoff = (retry.backoff * 2).min(BACKOFF_CAP);
        Ok(())
    }
}

/// The state of one operation's retries.
struct Retry {
    deadline: tokio::time::Instant,
    backoff: Duration,
}

impl Retry {
    fn new(within: Duration) -> Self {
        Self {
            deadline: tokio::time::Instant::now() + within,
            backoff: BACKOFF_FIRST,
        }
    }
}

fn is_connection_error(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.code() == Some("LOADING")
}

/// Our error for a Redis error: authentication and permission errors are [`BackendError::Auth`]
/// (fatal); lost connections are [`BackendError::Unreachable`].
fn classify(err: &RedisError, endpoint: &str) -> BackendError {
    if matches!(err.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"))
        || matches!(
            err.kind(),
            redis::ErrorKind::AuthenticationFailed
                | redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
        )
    {
        return BackendError::Auth {
            backend: BACKEND,
            message: err.to_string(),
        };
    }
    let text = err.to_string();
    let lower = text.to_lowercase();
    if ["certificate", "tls", "ssl", "handshake"]
        .iter()
        .any(|word| lower.contains(word))
    {
        return BackendError::Tls {
            backend: BACKEND,
            message: text,
        };
    }
    if is_connection_error(err) {
        let mut message = text;
        if err.is_connection_dropped() || (err.is_io_error() && !err.is_connection_refusal()) {
            message.push_str(
                " (if the server requires TLS, connect with rediss://; plaintext is refused)",
            );
        }
        return BackendError::Unreachable {
            backend: BACKEND,
            endpoint: endpoint.to_owned(),
            message,
        };
    }
    server(err)
}

/// A client-building error: a TLS one when TLS was asked for.
fn tls_or_server(err: &RedisError, tls: bool) -> BackendError {
    if tls {
        BackendError::Tls {
            backend: BACKEND,
            message: err.to_string(),
        }
    } else {
        server(err)
    }
}

fn server(err: &RedisError) -> BackendError {
    BackendError::Server {
        backend: BACKEND,
        message: err.to_string(),
    }
}

/// The bytes of a bulk string (or of a simple string).
pub(crate) fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}
