//! Backend URLs: `mem://`, `file://DIR`, `stdio://`, `redis://[user[:password]@]host:port[/db]`,
//! `rediss://...` (TLS), `kafka://host:port[,host:port...]`, each with optional
//! `?key=value&...` parameters. Which schemes exist is decided where URLs are dispatched
//! (`backend/mod.rs`); each backend checks the parts it uses.
//!
//! Credentials come from the URL, or from the parameters `password_env=VAR` (an environment
//! variable) or `password_file=PATH` (a file, trailing newline ignored), and `username=NAME`.
//! They are kept as [`Secret`]s: the URL's `Display` and `Debug` print `***` instead.

use std::fmt;

use super::{BackendError, Secret};

/// A parsed backend URL.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendUrl {
    /// The backend's scheme (`mem`, `file`, `stdio`, `redis`, `rediss`, `kafka`, ...).
    pub scheme: String,
    /// Everything between `://` and `?`, as written (`file://`: the directory).
    pub location: String,
    /// `host:port` of each server (none for `mem://`).
    pub hosts: Vec<String>,
    /// The user name, if any.
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<Secret>,
    /// The path after the hosts, without its leading `/` (Redis: the database number).
    pub path: String,
    /// The other `key=value` parameters, in order (Kafka: client settings such as
    /// `security.protocol`).
    pub params: Vec<(String, String)>,
}

impl BackendUrl {
    /// Parses `url`; reads the credentials it names from the environment or a file.
    pub fn parse(url: &str) -> Result<Self, BackendError> {
        let invalid = |reason: &str| BackendError::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected `scheme://...`"))?;
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("expected `scheme://...`"));
        }
        let scheme = scheme.to_ascii_lowercase();
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let location = rest.to_owned();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let mut username = None;
        let mut password = None;
        if let Some(userinfo) = userinfo {
            let (user, pass) = match userinfo.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (userinfo, None),
            };
            username = (!user.is_empty()).then(|| user.to_owned());
            password = pass.map(Secret::new);
        }
        let hosts: Vec<String> = if hosts.is_empty() {
            Vec::new()
        } else {
            hosts.split(',').map(str::to_owned).collect()
        };
        let mut params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid(&format!("parameter `{pair}` is not `key=value`")))?;
            match key {
                "username" => username = Some(value.to_owned()),
                "password_env" => {
                    let value = std::env::var(value).map_err(|_| {
                        BackendError::Credential(format!(
                            "environment variable `{value}` (named by password_env) is not set"
                        ))
                    })?;
                    password = Some(Secret::new(value));
                }
                "password_file" => {
                    let text = std::fs::read_to_string(value).map_err(|e| {
                        BackendError::Credential(format!(
                            "cannot read `{value}` (named by password_file): {e}"
                        ))
                    })?;
                    password = Some(Secret::new(text.trim_end_matches(['\r', '\n'])));
                }
                _ => params.push((key.to_owned(), value.to_owned())),
            }
        }
        Ok(Self {
            scheme,
            location,
            hosts,
            username,
            password,
            path: path.to_owned(),
            params,
        })
    }

    /// Checks that the URL names servers, each as `host:port` (the network backends).
    pub fn require_hosts(&self) -> Result<(), BackendError> {
        let invalid = |reason: String| BackendError::InvalidUrl {
            url: self.to_string(),
            reason,
        };
        if self.hosts.is_empty() {
            return Err(invalid("no host: expected `host:port`".to_owned()));
        }
        for host in &self.hosts {
            let port = host.rsplit_once(':').map(|(_, port)| port);
            if port.is_none_or(|p| p.parse::<u16>().is_err()) {
                return Err(invalid(format!("`{host}` is not `host:port`")));
            }
        }
        Ok(())
    }

    /// Refuses a host, a path, credentials or parameters: for backends that take none
    /// (`mem://`, `stdio://`), so that a URL meant for another backend is not silently
    /// accepted.
    pub fn refuse_location_and_params(&self) -> Result<(), BackendError> {
        let unused = if !self.location.is_empty() {
            Some(format!("`{}`", self.location))
        } else if let Some((key, _)) = self.params.first() {
            Some(format!("parameter `{key}`"))
        } else if self.username.is_some() || self.password.is_some() {
            Some("credentials".to_owned())
        } else {
            None
        };
        match unused {
            Some(what) => Err(BackendError::InvalidUrl {
                url: self.to_string(),
                reason: format!(
                    "{}:// takes no host, path or parameter, found {what}",
                    self.scheme
                ),
            }),
            None => Ok(()),
        }
    }

    /// The value of parameter `key`, if given.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `url` with the password of its user info replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{hosts}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if let Some(user) = &self.username {
            write!(f, "{user}")?;
            if self.password.is_some() {
                write!(f, ":***")?;
            }
            write!(f, "@")?;
        } else if self.password.is_some() {
            write!(f, ":***@")?;
        }
        write!(f, "{}", self.hosts.join(","))?;
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        for (i, (k, v)) in self.params.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            let shown = if is_secret_key(k) { "***" } else { v.as_str() };
            write!(f, "{sep}{k}={shown}")?;
        }
        Ok(())
    }
}

/// Kafka settings that hold secrets (`sasl.password`, `ssl.key.password`, ...).
pub(crate) fn is_secret_key(key: &str) -> bool {
    key.contains("password") || key.contains("secret") || key.ends_with(".pem")
}

impl fmt::Debug for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        let mem = BackendUrl::parse("mem://").unwrap();
        assert_eq!(mem.scheme, "mem");
        let file = BackendUrl::parse("file://./data").unwrap();
        assert_eq!(file.location, "./data");
        let redis = BackendUrl::parse("redis://app:hunter2@127.0.0.1:6379/2").unwrap();
        assert_eq!(redis.hosts, ["127.0.0.1:6379"]);
        assert_eq!(redis.username.as_deref(), Some("app"));
        assert_eq!(redis.password.as_ref().unwrap().expose(), "hunter2");
        assert_eq!(redis.path, "2");
        let kafka =
            BackendUrl::parse("kafka://a:9092,b:9093?security.protocol=SASL_SSL&sasl.password=x")
                .unwrap();
        assert_eq!(kafka.hosts, ["a:9092", "b:9093"]);
        assert_eq!(kafka.param("security.protocol"), Some("SASL_SSL"));
    }

    #[test]
    fn never_prints_a_password() {
        let url = BackendUrl::parse("redis://app:hunter2@h:1?sasl.password=hunter3").unwrap();
        for shown in [format!("{url}"), format!("{url:?}")] {
            assert!(!shown.contains("hunter"), "{shown}");
        }
        let err = BackendUrl::parse("redis://app:hunter2@nohostport")
            .and_then(|url| url.require_hosts())
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        assert!(matches!(
            BackendUrl::parse("localhost:6379"),
            Err(BackendError::InvalidUrl { .. })
        ));
        assert!(matches!(
            BackendUrl::parse("redis://h:notaport").and_then(|url| url.require_hosts()),
            Err(BackendError::InvalidUrl { .. })
        ));
        assert!(matches!(
            BackendUrl::parse("mem://localhost:9999?anything=1")
                .and_then(|url| url.refuse_location_and_params()),
            Err(BackendError::InvalidUrl { .. })
        ));
        assert!(matches!(
            BackendUrl::parse("kafka://h:1?password_env=DATAFLOW_SURELY_UNSET_VAR"),
            Err(BackendError::Credential(_))
        ));
    }

    #[test]
    fn reads_a_password_file() {
        let path = std::env::temp_dir().join(format!("dataflow-pw-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let url = BackendUrl::parse(&format!(
            "redis://h:1?username=app&password_file={}",
            path.display()
        ))
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(url.password.unwrap().expose(), "s3cret");
        assert_eq!(url.username.as_deref(), Some("app"));
    }
}
