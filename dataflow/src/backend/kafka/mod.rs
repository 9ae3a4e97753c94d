//! The Kafka bridge (`kafka://host:port[,host:port...]`, cargo feature `kafka`), on `rdkafka`
//! with its bundled librdkafka.
//!
//! How the pipeline model maps onto Kafka:
//!
//! | dataflow | Kafka |
//! |---|---|
//! | topic | a Kafka topic of the same name, created through the admin API |
//! | partition | a Kafka partition (the count given when the topic is created; an existing topic keeps its own) |
//! | offset | the Kafka offset |
//! | consumer group, member | a Kafka consumer group (`group.id`), one consumer per member; Kafka assigns the partitions and moves them when a member leaves or dies |
//! | commit of the last processed record `o` | a synchronous offset commit of `o + 1` |
//! | value | the record's payload, encoded by the topic's codec (no key, no headers) |
//!
//! Producers are idempotent (`enable.idempotence=true`, `acks=all`): a retried send never
//! duplicates or reorders a partition. A producer's backlog (for backpressure on internal
//! topics) is, over the groups this process joined on its topic, the largest gap between the
//! partition's end and the group's committed offset. Consumers commit by hand after processing
//! (`enable.auto.commit=false`) and a new group starts at the earliest record
//! (`auto.offset.reset=earliest`): at-least-once.
//!
//! Settings: the URL's user and password become `sasl.username` and `sasl.password` (with
//! `security.protocol=SASL_PLAINTEXT` and `sasl.mechanism=PLAIN` unless the URL says
//! otherwise); every other URL parameter is passed to librdkafka as is, after this bridge's
//! defaults, so it can override them:
//! `kafka://broker:9093?security.protocol=SASL_SSL&sasl.mechanism=SCRAM-SHA-512&username=app&password_env=KAFKA_PASSWORD`.
//!
//! Static membership: with `group.instance.id=NAME` in the URL (a name of this process's own,
//! stable across its restarts: a host name, a pod name), the members of a group in this
//! process are static members `NAME-0`, `NAME-1`, ... (Kafka's KIP-345). A process restarted
//! after a crash takes its members' places at once, with their partitions and no rebalance,
//! instead of waiting for their sessions to expire; in exchange a static member does not
//! leave on a clean stop either (its partitions wait for its session timeout, or for it to
//! come back). Two live processes with one name fence each other: the older one fails with
//! [`BackendError::InvalidUrl`].
//!
//! Joining: the members of a segment join one after the other, so the group rebalances a few
//! times before it settles, and a partition read by one task for a moment may then move to
//! another. A task's keyed state (counts, folds) stays with the task, so a member of this
//! process holds back what it reads until every member of its group in this process has
//! joined and been assigned partitions in the same round (or 30 s have passed); records read
//! before a rebalance are dropped, not returned (nothing was committed, so they are read
//! again). Later rebalances (another process joining or dying) move partitions as Kafka does.
//!
//! Errors: a wrong password or a missing ACL is [`BackendError::Auth`], a TLS failure
//! [`BackendError::Tls`]; both are fatal. Brokers that cannot be reached are
//! [`BackendError::Unreachable`]: at [`connect`](KafkaBackend::connect) after a few seconds;
//! later, librdkafka reconnects by itself, and an operation fails only once the outage
//! outlasts `retry_for_ms` (60 s by default; it sets `message.timeout.ms` for sends, unless
//! the URL sets that too, and bounds reads and commits). `retry_for_ms` is the bridge's own
//! parameter; every other one goes to librdkafka as it is.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;

use super::{
    BackendError, BackendUrl, BoxFuture, Delivery, RemoteBackend, RemoteMember, RemoteProducer,
    StartAt,
};

mod backlog;
mod context;
mod errors;
mod member;
mod partition_reader;
mod producer;

use backlog::Backlogs;
use context::Context;
use context::LocalGroup;
use errors::{Class, backend_error, classify, join_error};
pub use member::KafkaMember;
pub use producer::KafkaProducer;
use producer::SharedProducer;

const SCHEME: &str = "kafka";

/// How long [`KafkaBackend::connect`] waits for the cluster's metadata.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of one metadata request after connecting.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a topic just created may take to show in the metadata.
const TOPIC_VISIBLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long sends, reads and commits ride out an outage before they fail (`retry_for_ms`).
const RETRY_FOR: Duration = Duration::from_secs(60);
/// URL parameters of the bridge itself; every other one goes to librdkafka.
/// (`group.instance.id` is made per member from the URL's value, and `password` is the
/// credential, as on Redis.)
const BRIDGE_PARAMS: [&str; 3] = ["retry_for_ms", "group.instance.id", "password"];

/// The members of each `(topic, group)` this process joined.
type LocalGroups = Arc<Mutex<HashMap<(String, String), Arc<LocalGroup>>>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops `value` (an rdkafka client, whose drop blocks while it closes) off the async
/// workers when called inside a tokio runtime.
fn drop_blocking<T: Send + 'static>(value: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(move || drop(value));
        }
        Err(_) => drop(value),
    }
}

/// The settings every client of `url` shares: servers, credentials, then the URL's own
/// parameters (last, so that they override).
fn base_config(url: &BackendUrl) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", url.hosts.join(","))
        .set("client.id", "dataflow")
        // Topics are created with their partition count, never implicitly with the default.
        .set("allow.auto.create.topics", "false")
        .set_log_level(RDKafkaLogLevel::Error);
    if let Some(user) = &url.username {
        config.set("sasl.username", user);
    }
    // `?password=` is the same credential as the URL's user info.
    let password = url
        .password
        .as_ref()
        .map(|p| p.expose())
        .or(url.param("password"));
    if let Some(password) = password {
        config.set("sasl.password", password);
    }
    if (url.username.is_some() || password.is_some()) && url.param("security.protocol").is_none() {
        // Credentials without a protocol would be silently ignored by librdkafka.
        config.set("security.protocol", "SASL_PLAINTEXT");
        if url.param("sasl.mechanism").is_none() && url.param("sasl.mechanisms").is_none() {
            config.set("sasl.mechanism", "PLAIN");
        }
    }
    config
}

fn apply_params(config: &mut ClientConfig, url: &BackendUrl) {
    for (key, value) in &url.params {
        if !BRIDGE_PARAMS.contains(&key.as_str()) {
            config.set(key, value);
        }
    }
}

/// `retry_for_ms`, or the default.
fn retry_for(url: &BackendUrl) -> Result<Duration, BackendError> {
    let Some(value) = url.param("retry_for_ms") else {
        return Ok(RETRY_FOR);
    };
    value
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| BackendError::InvalidUrl {
            url: url.to_string(),
            reason: format!("`retry_for_ms={value}` is not a number"),
        })
}

/// Topics on a Kafka cluster (or anything speaking its protocol). See the
/// [module docs](self).
pub struct KafkaBackend {
    url: BackendUrl,
    endpoint: String,
    /// The settings consumers start from (holds the password: never printed).
    consumer_config: ClientConfig,
    /// How long a read or a commit rides out an outage.
    retry_for: Duration,
    /// The local members of each `(topic, group)`.
    groups: LocalGroups,
    /// Reads groups' committed offsets, for the producers' backlogs.
    backlogs: Arc<Mutex<Backlogs>>,
    /// `group.instance.id`: this process's static identity in its groups, if it has one.
    instance: Option<String>,
    clients: Option<Clients>,
}

/// The clients shared by every producer and topic operation.
struct Clients {
    context: Context,
    producer: Arc<SharedProducer>,
    admin: AdminClient<Context>,
}

impl fmt::Debug for KafkaBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL's Display redacts the password and secret parameters.
        f.debug_struct("KafkaBackend")
            .field("url", &format_args!("{}", self.url))
            .finish_non_exhaustive()
    }
}

impl Drop for KafkaBackend {
    fn drop(&mut self) {
        if let Some(clients) = self.clients.take() {
            drop_blocking(clients);
        }
    }
}

impl KafkaBackend {
    /// Connects to the cluster `url` names: makes the shared idempotent producer and admin
    /// client, and fetches the cluster's metadata, so that unreachable brokers, a wrong
    /// password or a TLS mismatch fail here within a few seconds.
    pub async fn connect(url: BackendUrl) -> Result<Self, BackendError> {
        let endpoint = url.hosts.join(",");
        let retry_for = retry_for(&url)?;
        let context = Context::default();
        let mut producer_config = base_config(&url);
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // A send rides out an outage as long as reads and commits do.
            .set("message.timeout.ms", retry_for.as_millis().to_string());
        apply_params(&mut producer_config, &url);
        let producer = SharedProducer::new(producer_config, context.clone())
            .map_err(|e| backend_error(&e, &context, &endpoint))?;
        let producer = Arc::new(producer);
        let mut admin_config = base_config(&url);
        apply_params(&mut admin_config, &url);
        let admin: AdminClient<Context> = admin_config
            .create_with_context(context.clone())
            .map_err(|e| backend_error(&e, &context, &endpoint))?;
        let mut consumer_config = base_config(&url);
        consumer_config
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // A dead member's partitions move after 10 s instead of 45.
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "100");
        apply_params(&mut consumer_config, &url);
        let backend = Self {
            instance: url.param("group.instance.id").map(str::to_owned),
            url,
            endpoint,
            backlogs: Arc::new(Mutex::new(Backlogs::new(consumer_config.clone()))),
            consumer_config,
            retry_for,
            groups: LocalGroups::default(),
            clients: Some(Clients {
                context,
                producer,
                admin,
            }),
        };
        backend.metadata(None, CONNECT_TIMEOUT).await?;
        Ok(backend)
    }

    fn clients(&self) -> &Clients {
        // Taken only by Drop.
        self.clients
            .as_ref()
            .expect("clients are present until drop")
    }

    fn error(&self, error: &KafkaError) -> BackendError {
        backend_error(error, &self.clients().context, &self.endpoint)
    }

    /// Fetches metadata (of `topic`, or of the cluster) off the async workers.
    async fn metadata(
        &self,
        topic: Option<&str>,
        timeout: Duration,
    ) -> Result<rdkafka::metadata::Metadata, BackendError> {
        let producer = self.clients().producer.get();
        let topic = topic.map(str::to_owned);
        let fetched = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(topic.as_deref(), timeout)
        })
        .await
        .map_err(join_error)?;
        fetched.map_err(|e| self.error(&e))
    }

    /// The partition count of `topic`, or `None` if it does not exist (yet).
    async fn partition_count(&self, topic: &str) -> Result<Option<u32>, BackendError> {
        let metadata = self.metadata(Some(topic), METADATA_TIMEOUT).await?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        if let Some(error) = found.error() {
            let code = RDKafkaErrorCode::from(error);
            return match classify(code) {
                Class::Transient => Ok(None),
                _ => Err(self.topic_error(topic, &KafkaError::MetadataFetch(code))),
            };
        }
        let partitions = found.partitions().len();
        Ok((partitions > 0).then(|| u32::try_from(partitions).unwrap_or(u32::MAX)))
    }

    fn topic_error(&self, topic: &str, error: &KafkaError) -> BackendError {
        match self.error(error) {
            BackendError::Server { message, .. } => BackendError::Topic {
                backend: SCHEME,
                topic: topic.to_owned(),
                message,
            },
            other => other,
        }
    }

    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), BackendError> {
        let partitions = i32::try_from(partitions).map_err(|_| BackendError::Topic {
            backend: SCHEME,
            topic: topic.to_owned(),
            message: format!("{partitions} partitions is more than Kafka allows"),
        })?;
        // -1: the broker's default replication factor.
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
        let options = AdminOptions::new()
            .request_timeout(Some(METADATA_TIMEOUT))
            .operation_timeout(Some(METADATA_TIMEOUT));
        let created = tokio::time::timeout(
            METADATA_TIMEOUT + Duration::from_secs(5),
            self.clients().admin.create_topics([&new], &options),
        )
        .await
        .map_err(|_| BackendError::Unreachable {
            backend: SCHEME,
            endpoint: self.endpoint.clone(),
            message: format!("creating topic `{topic}` timed out"),
        })?
        .map_err(|e| self.topic_error(topic, &e))?;
        for result in created {
            match result {
                Ok(_) => {}
                // Another process (or member) created it first: fine.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(self.topic_error(topic, &KafkaError::AdminOp(code))),
            }
        }
        Ok(())
    }
}

impl RemoteBackend for KafkaBackend {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    fn ensure_topic<'a>(
        &'a self,
        topic: &'a str,
        partitions: u32,
    ) -> BoxFuture<'a, Result<u32, BackendError>> {
        Box::pin(async move {
            if let Some(count) = self.partition_count(topic).await? {
                return Ok(count);
            }
            self.create_topic(topic, partitions.max(1)).await?;
            // The metadata may lag the creation for a moment.
            let deadline = Instant::now() + TOPIC_VISIBLE_TIMEOUT;
            loop {
                if let Some(count) = self.partition_count(topic).await? {
                    return Ok(count);
                }
                if Instant::now() >= deadline {
                    return Err(BackendError::Topic {
                        backend: SCHEME,
                        topic: topic.to_owned(),
                        message: "created, but still missing from the metadata".to_owned(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    fn producer<'a>(
        &'a self,
        topic: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteProducer>, BackendError>> {
        Box::pin(async move {
            let clients = self.clients();
            let producer: Box<dyn RemoteProducer> = Box::new(KafkaProducer::new(
                topic,
                &self.endpoint,
                Arc::clone(&clients.producer),
                clients.context.clone(),
                Arc::clone(&self.groups),
                Arc::clone(&self.backlogs),
            ));
            Ok(producer)
        })
    }

    fn read_partition<'a>(
        &'a self,
        topic: &'a str,
        partition: u32,
        cursor: &'a str,
        max: usize,
    ) -> BoxFuture<'a, Result<(Vec<Delivery>, String), BackendError>> {
        let mut config = self.consumer_config.clone();
        // Assigned, never subscribed: no group membership, nothing committed.
        config
            .set("group.id", "dataflow-partition-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true");
        let (topic, cursor, endpoint) =
            (topic.to_owned(), cursor.to_owned(), self.endpoint.clone());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                partition_reader::read(&config, &topic, partition, &cursor, max, &endpoint)
            })
            .await
            .map_err(join_error)?
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
        _partitions: u32,
        local_members: u32,
        start: StartAt,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteMember>, BackendError>> {
        let reset = match start {
            StartAt::Latest => "latest",
            StartAt::Timestamp(_) => {
                return Box::pin(async move {
                    Err(BackendError::Topic {
                        backend: SCHEME,
                        topic: topic.to_owned(),
                        message: "a new Kafka group starts at the earliest or the latest record, \
                                  not at a time"
                            .to_owned(),
                    })
                });
            }
            _ => "earliest",
        };
        Box::pin(async move {
            let local = Arc::clone(
                lock(&self.groups)
                    .entry((topic.to_owned(), group.to_owned()))
                    .or_insert_with(|| Arc::new(LocalGroup::new(local_members as usize))),
            );
            let mut config = self.consumer_config.clone();
            config.set("auto.offset.reset", reset);
            let member: Box<dyn RemoteMember> = Box::new(KafkaMember::join(
                &config,
                topic,
                group,
                &self.endpoint,
                local,
                self.retry_for,
                self.instance.as_deref(),
            )?);
            Ok(member)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_broker_fails_fast_and_debug_hides_the_password() {
        // A port nothing listens on (bound then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let url = BackendUrl::parse(&format!("kafka://app:hunter2@127.0.0.1:{port}"))
            .expect("a valid URL");
        let started = Instant::now();
        let error = KafkaBackend::connect(url)
            .await
            .expect_err("nothing listens there");
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(
            matches!(error, BackendError::Unreachable { .. }),
            "{error:?}"
        );
        assert!(!format!("{error} {error:?}").contains("hunter2"));
    }

    #[test]
    fn retry_for_ms_is_the_bridges_own_and_never_reaches_librdkafka() {
        let url = |query: &str| BackendUrl::parse(&format!("kafka://127.0.0.1:9092{query}"));
        let default = url("").expect("a valid URL");
        assert_eq!(retry_for(&default).ok(), Some(RETRY_FOR));
        let set = url("?retry_for_ms=1500&linger.ms=1").expect("a valid URL");
        assert_eq!(retry_for(&set).ok(), Some(Duration::from_millis(1500)));
        let mut config = ClientConfig::new();
        apply_params(&mut config, &set);
        assert_eq!(config.get("retry_for_ms"), None);
        assert_eq!(config.get("linger.ms"), Some("1"));
        let bad = url("?retry_for_ms=soon").expect("a valid URL");
        assert!(matches!(
            retry_for(&bad),
            Err(BackendError::InvalidUrl { reason, .. }) if reason.contains("soon")
        ));
    }

    /// Issue 15, item 11: the credential forms of Redis work on Kafka too, and the bridge's
    /// own parameters never reach librdkafka as they are.
    #[test]
    fn a_password_parameter_is_the_credential_and_instance_ids_are_per_member() {
        let url = BackendUrl::parse(
            "kafka://127.0.0.1:9092?username=app&password=hunter2&group.instance.id=host-a",
        )
        .expect("a valid URL");
        let mut config = base_config(&url);
        apply_params(&mut config, &url);
        assert_eq!(config.get("sasl.username"), Some("app"));
        assert_eq!(config.get("sasl.password"), Some("hunter2"));
        assert_eq!(config.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(config.get("password"), None);
        assert_eq!(config.get("group.instance.id"), None);
        assert!(!url.to_string().contains("hunter2"), "{url}");
    }

    #[tokio::test]
    async fn a_setting_librdkafka_does_not_know_is_refused_at_once() {
        let url =
            BackendUrl::parse("kafka://127.0.0.1:9?sesion.timeout.ms=6000").expect("a valid URL");
        let error = KafkaBackend::connect(url)
            .await
            .expect_err("a misspelt setting");
        assert!(error.is_fatal(), "{error:?}");
        assert!(error.to_string().contains("sesion.timeout.ms"), "{error}");
    }
}
