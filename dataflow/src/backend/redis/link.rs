//! One connection to the server, re-established on demand, and what its errors mean.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

use super::BACKEND;
use crate::backend::BackendError;

/// Backoff between reconnection attempts: doubles from the first to the cap, with jitter.
const BACKOFF_FIRST: Duration = Duration::from_millis(20);
const BACKOFF_CAP: Duration = Duration::from_secs(1);
/// The longest one connection attempt may take (TCP, TLS, handshake), within
/// [`Target::connect_timeout`].
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// The server the connections of one backend reach, and how.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) client: Client,
    /// `host:port`, for messages.
    pub(crate) endpoint: String,
    /// Whether the URL is `rediss://`.
    pub(crate) tls: bool,
    /// How long connecting may take, the first answer included (`connect_timeout_ms`).
    pub(crate) connect_timeout: Duration,
    /// How long an operation retries a lost connection (`retry_for_ms`).
    pub(crate) reconnect_for: Duration,
}

/// One connection, re-established on demand: queries retry a lost connection with capped,
/// jittered backoff for [`Target::reconnect_for`], and fail at once on anything else.
pub(crate) struct Link {
    target: Target,
    response_timeout: Duration,
    connection: Option<MultiplexedConnection>,
}

impl Link {
    /// A link to `target` whose replies may take up to `response_timeout`.
    pub(crate) fn new(target: Target, response_timeout: Duration) -> Self {
        Self {
            target,
            response_timeout,
            connection: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, RedisError> {
        if self.connection.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(ATTEMPT_TIMEOUT.min(self.target.connect_timeout)))
                .set_response_timeout(Some(self.response_timeout));
            let connection = self
                .target
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("set above"))
    }

    /// Connects and gets an answer to a `PING` within the target's connect timeout, retrying
    /// a refused or dropped connection meanwhile (a server starting up).
    pub(crate) async fn connect(&mut self) -> Result<(), BackendError> {
        let within = self.target.connect_timeout;
        let cmd = redis::cmd("PING");
        let ping = self.query_within::<String>(&cmd, within);
        let tried = format!("tried for {} ms: connect_timeout_ms", within.as_millis());
        match tokio::time::timeout(within, ping).await {
            Ok(Err(BackendError::Unreachable {
                backend,
                endpoint,
                message,
            })) => Err(BackendError::Unreachable {
                backend,
                endpoint,
                message: format!("{message} ({tried})"),
            }),
            Ok(answered) => answered.map(drop),
            Err(_elapsed) => {
                self.connection = None;
                Err(BackendError::Unreachable {
                    backend: BACKEND,
                    endpoint: self.target.endpoint.clone(),
                    message: format!("no answer ({tried})"),
                })
            }
        }
    }

    /// Runs `cmd`, reconnecting as needed.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &redis::Cmd,
    ) -> Result<T, BackendError> {
        self.query_within(cmd, self.target.reconnect_for).await
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
            self.classify(&err)
        })
    }

    /// Runs `pipe`, reconnecting as needed; `T` holds the replies not ignored.
    pub(crate) async fn query_pipe<T: redis::FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
    ) -> Result<T, BackendError> {
        let mut retry = Retry::new(self.target.reconnect_for);
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
            return Err(self.classify(&err));
        }
        self.connection = None;
        if tokio::time::Instant::now() + retry.backoff > retry.deadline {
            return Err(self.classify(&err));
        }
        // Jitter on the upper half: processes that lost the server together do not come
        // back in step.
        let jitter = rand::random_range(0.5..=1.0);
        tokio::time::sleep(retry.backoff.mul_f64(jitter)).await;
        retry.backoff = (retry.backoff * 2).min(BACKOFF_CAP);
        Ok(())
    }

    /// Our error for `err`, met on this link.
    pub(crate) fn classify(&self, err: &RedisError) -> BackendError {
        classify(err, &self.target.endpoint, self.target.tls)
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

/// Our error for a Redis error met on a connection to `endpoint` (over TLS if `tls`):
/// authentication and permission errors are [`BackendError::Auth`] (fatal); an answer that is
/// not the Redis protocol is a URL pointing at another service (fatal); lost connections are
/// [`BackendError::Unreachable`].
pub(crate) fn classify(err: &RedisError, endpoint: &str, tls: bool) -> BackendError {
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
    let scheme = if tls { "rediss" } else { "redis" };
    if err.kind() == redis::ErrorKind::Parse {
        return BackendError::InvalidUrl {
            url: format!("{scheme}://{endpoint}"),
            reason: format!(
                "not a Redis server: its answer is not the Redis protocol ({})",
                err.to_string().lines().next().unwrap_or_default()
            ),
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
    if tls && lower.contains("corrupt message") {
        // rustls read something that is not TLS.
        return BackendError::Tls {
            backend: BACKEND,
            message: format!("{text} (the server does not speak TLS on this port)"),
        };
    }
    if is_connection_error(err) {
        let mut message = text;
        // A TLS-only port accepts the connection and drops it at the first plaintext byte:
        // only then can the hint apply (not after a refusal, a failed name lookup or a
        // timeout, and never on rediss://).
        if !tls && err.is_connection_dropped() && !err.is_connection_refusal() {
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
    BackendError::Server {
        backend: BACKEND,
        message: err.to_string(),
    }
}
