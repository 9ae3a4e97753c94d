//! What a `redis://` or `rediss://` URL asks for: the client, its TLS files, and the bridge's
//! parameters, each checked before anything connects.

use std::time::Duration;

use redis::{Client, ConnectionAddr, IntoConnectionInfo};

use super::BACKEND;
use super::link::Target;
use crate::backend::{BackendError, BackendUrl};

/// How long a lost connection is retried before the operation fails (`retry_for_ms`).
const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// How long connecting may take, first answer included (`connect_timeout_ms`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a dead member's partitions wait (`lease_ms`).
const LEASE: Duration = Duration::from_secs(5);
/// The shortest lease that works: a member renews its leases every fifth of it, and a
/// renewal is a round trip.
const LEASE_MIN: Duration = Duration::from_millis(100);

/// The URL parameters of the Redis bridge (besides the credentials).
const PARAMS: [&str; 9] = [
    "max_len",
    "max_age_ms",
    "lease_ms",
    "retry_for_ms",
    "connect_timeout_ms",
    "ca_file",
    "cert_file",
    "key_file",
    "insecure",
];

/// Settings read from the URL's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// `MAXLEN ~ n` on every append.
    pub(crate) max_len: Option<u64>,
    /// `MINID ~ (now - age)` on every append.
    pub(crate) max_age: Option<Duration>,
    /// A member whose heartbeat is older than this is dead; its leases expire after it.
    pub(crate) lease: Duration,
    /// How long an operation retries a lost connection before it fails.
    pub(crate) reconnect_for: Duration,
    /// How long connecting may take, the first answer included.
    pub(crate) connect_timeout: Duration,
}

impl Settings {
    /// The settings `url` asks for. Refuses a parameter the bridge does not know (a misspelt
    /// one would otherwise be ignored without a word), and values that cannot work.
    pub(crate) fn from_url(url: &BackendUrl) -> Result<Self, BackendError> {
        let invalid = |reason: String| BackendError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        if let Some((key, _)) = url
            .params
            .iter()
            .find(|(k, _)| !PARAMS.contains(&k.as_str()) && k != "password")
        {
            return Err(invalid(format!(
                "unknown parameter `{key}` (Redis takes {}, username, password, password_env, \
                 password_file)",
                PARAMS.join(", ")
            )));
        }
        let number = |key: &str| -> Result<Option<u64>, BackendError> {
            url.param(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| invalid(format!("`{key}={v}` is not a number")))
                })
                .transpose()
        };
        // Zero would drop every record, or never hold a partition, or never connect.
        let positive = |key: &str, why: &str| -> Result<Option<u64>, BackendError> {
            match number(key)? {
                Some(0) => Err(invalid(format!("`{key}=0` {why}"))),
                other => Ok(other),
            }
        };
        let lease = positive("lease_ms", "would expire every lease at once")?
            .map_or(LEASE, Duration::from_millis);
        if lease < LEASE_MIN {
            return Err(invalid(format!(
                "`lease_ms={}` is too short: a lease must outlast the round trips that renew \
                 it (at least {} ms)",
                lease.as_millis(),
                LEASE_MIN.as_millis()
            )));
        }
        Ok(Self {
            max_len: positive("max_len", "would trim every record away")?,
            max_age: positive("max_age_ms", "would trim every record away")?
                .map(Duration::from_millis),
            lease,
            reconnect_for: number("retry_for_ms")?.map_or(RECONNECT_FOR, Duration::from_millis),
            connect_timeout: positive("connect_timeout_ms", "would never connect")?
                .map_or(CONNECT_TIMEOUT, Duration::from_millis),
        })
    }
}

/// The server `url` names, as the connections of a backend reach it.
pub(crate) fn target(url: &BackendUrl, settings: &Settings) -> Result<Target, BackendError> {
    let invalid = |reason: String| BackendError::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    let endpoint = url.hosts[0].clone();
    let (host, port) = endpoint
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| invalid("expected host:port".into()))?;
    let db = if url.path.is_empty() {
        0
    } else {
        url.path
            .parse::<i64>()
            .map_err(|_| invalid(format!("`{}` is not a database number", url.path)))?
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
    let client_error = |e: redis::RedisError| {
        let message = e.to_string();
        if tls {
            BackendError::Tls {
                backend: BACKEND,
                message,
            }
        } else {
            BackendError::Server {
                backend: BACKEND,
                message,
            }
        }
    };
    let info = addr.into_connection_info().map_err(client_error)?;
    let mut redis = info.redis_settings().clone().set_db(db);
    if let Some(user) = &url.username {
        redis = redis.set_username(user);
    }
    // `?password=` is the same credential as the URL's user info (as on Kafka).
    let password = url.password.as_ref().map(|p| p.expose().to_owned());
    if let Some(password) = password.or_else(|| url.param("password").map(str::to_owned)) {
        redis = redis.set_password(password);
    }
    let info = info.set_redis_settings(redis);
    let client = match tls_files(url, tls)? {
        Some(certificates) => Client::build_with_tls(info, certificates),
        None => Client::open(info),
    }
    .map_err(client_error)?;
    Ok(Target {
        client,
        endpoint,
        tls,
        connect_timeout: settings.connect_timeout,
        reconnect_for: settings.reconnect_for,
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(query: &str) -> Result<Settings, BackendError> {
        Settings::from_url(&BackendUrl::parse(&format!("redis://h:1?{query}")).expect("a URL"))
    }

    #[test]
    fn values_that_cannot_work_are_refused() {
        for (query, said) in [
            ("lease_ms=0", "lease_ms=0"),
            ("lease_ms=20", "too short"),
            ("max_len=0", "max_len=0"),
            ("max_age_ms=0", "max_age_ms=0"),
            ("connect_timeout_ms=0", "connect_timeout_ms=0"),
            ("lease_ms=soon", "not a number"),
        ] {
            let refused = settings(query);
            let Err(BackendError::InvalidUrl { reason, .. }) = &refused else {
                panic!("{query} accepted: {refused:?}");
            };
            assert!(reason.contains(said), "{query}: {reason}");
        }
        let fine = settings("lease_ms=100&retry_for_ms=0&connect_timeout_ms=250").expect("valid");
        assert_eq!(fine.lease, Duration::from_millis(100));
        assert_eq!(fine.reconnect_for, Duration::ZERO);
        assert_eq!(fine.connect_timeout, Duration::from_millis(250));
    }
}
