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
//! duplicates or reorders a partition. Consumers commit by hand after processing
//! (`enable.auto.commit=false`) and a new group starts at the earliest record
//! (`auto.offset.reset=earliest`): at-least-once.
//!
//! Settings: the URL's user and password become `sasl.username` and `sasl.password` (with
//! `security.protocol=SASL_PLAINTEXT` and `sasl.mechanism=PLAIN` unless the URL says
//! otherwise); every other URL parameter is passed to librdkafka as is, after this bridge's
//! defaults, so it can override them:
//! `kafka://broker:9093?security.protocol=SASL_SSL&sasl.mechanism=SCRAM-SHA-512&username=app&password_env=KAFKA_PASSWORD`.
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
//! outlasts its bound (a send: `message.timeout.ms`, 60 s here; a commit or a read: 60 s).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{FutureExt, StreamExt};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::url::is_secret_key;
use super::{
    BackendError, BackendUrl, BoxFuture, Delivery, RemoteBackend, RemoteMember, RemoteProducer,
};

const SCHEME: &str = "kafka";

/// How long [`KafkaBackend::connect`] waits for the cluster's metadata.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of one metadata request after connecting.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a topic just created may take to show in the metadata.
const TOPIC_VISIBLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a commit or a read retries through transient errors before reporting them.
const OUTAGE_LIMIT: Duration = Duration::from_secs(60);
/// How long leaving a group may take before it goes on in the background.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long after the last local join a member holds records back while the group settles.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The members of one consumer group of one topic in this process.
struct LocalGroup {
    /// Members the runtime joins per process (one per partition).
    expected: usize,
    /// Bumped at each local join.
    epoch: AtomicU64,
    members: Mutex<Vec<Arc<MemberState>>>,
    last_join: Mutex<Instant>,
}

/// What the rebalance callbacks of one member saw.
#[derive(Default)]
struct MemberState {
    /// Its partitions, `None` while revoked.
    assignment: Mutex<Option<Vec<i32>>>,
    /// The group's epoch at its last assignment.
    assigned_at: AtomicU64,
    /// Bumped at each assignment.
    assignments: AtomicU64,
}

impl LocalGroup {
    /// Whether every local member has joined and got its partitions after the last join,
    /// with no partition given twice (a stale assignment would overlap a fresh one).
    fn settled(&self) -> bool {
        if lock(&self.last_join).elapsed() > SETTLE_LIMIT {
            return true;
        }
        let members = lock(&self.members);
        if members.len() < self.expected {
            return false;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let mut seen = Vec::new();
        for member in members.iter() {
            if member.assigned_at.load(Ordering::Acquire) != epoch {
                return false;
            }
            let Some(partitions) = lock(&member.assignment).clone() else {
                return false;
            };
            for partition in partitions {
                if seen.contains(&partition) {
                    return false;
                }
                seen.push(partition);
            }
        }
        true
    }
}

/// The last error librdkafka reported to a client (through its error callback), to explain
/// an operation that merely timed out (a refused password shows only there).
/// On a consumer, it also follows the member's assignment.
#[derive(Clone, Default)]
struct Context {
    last_error: Arc<Mutex<Option<(RDKafkaErrorCode, String)>>>,
    member: Option<(Arc<LocalGroup>, Arc<MemberState>)>,
}

impl Context {
    fn last_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(code) = error.rdkafka_error_code() {
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((code, reason.to_owned()));
        }
    }
}

impl ConsumerContext for Context {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Some((group, member)) = &self.member else {
            return;
        };
        match rebalance {
            Rebalance::Assign(list) => {
                let partitions = list.elements().iter().map(|e| e.partition()).collect();
                *lock(&member.assignment) = Some(partitions);
                member
                    .assigned_at
                    .store(group.epoch.load(Ordering::Acquire), Ordering::Release);
                member.assignments.fetch_add(1, Ordering::AcqRel);
            }
            Rebalance::Revoke(_) => *lock(&member.assignment) = None,
            Rebalance::Error(_) => {}
        }
    }
}

/// What an error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Auth,
    Tls,
    /// Brokers down or unreachable, a coordinator or leader moving: librdkafka retries.
    Transient,
    /// The group is rebalancing, or this member's generation is over.
    Rebalance,
    Other,
}

fn classify(code: RDKafkaErrorCode) -> Class {
    use RDKafkaErrorCode as C;
    match code {
        C::Authentication
        | C::SaslAuthenticationFailed
        | C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::DelegationTokenAuthorizationFailed
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::UnacceptableCredential => Class::Auth,
        C::SSL => Class::Tls,
        C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::MessageTimedOut
        | C::OperationTimedOut
        | C::TimedOutQueue
        | C::RequestTimedOut
        | C::NetworkException
        | C::BrokerNotAvailable
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::CoordinatorNotAvailable
        | C::CoordinatorLoadInProgress
        | C::NotCoordinator
        | C::WaitingForCoordinator
        | C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::UnknownPartition
        | C::KafkaStorageError
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::Retry
        | C::Interrupted => Class::Transient,
        C::RebalanceInProgress
        | C::IllegalGeneration
        | C::UnknownMemberId
        | C::FencedInstanceId
        | C::AssignmentLost
        | C::StaleMemberEpoch
        | C::FencedMemberEpoch => Class::Rebalance,
        _ => Class::Other,
    }
}

/// The code of `error`, if it has one.
fn code_of(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    match error {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

fn class_of(error: &KafkaError) -> Class {
    code_of(error).map_or(Class::Other, classify)
}

/// Turns an rdkafka error into a [`BackendError`]. An error that says only "timed out" or
/// "transport" is explained by the client's last reported error when that one is an
/// authentication or TLS failure (librdkafka keeps retrying those, so operations time out).
fn backend_error(error: &KafkaError, context: &Context, endpoint: &str) -> BackendError {
    if let KafkaError::ClientConfig(_, description, key, value) = error {
        let shown = if is_secret_key(key) { "***" } else { value };
        return BackendError::Server {
            backend: SCHEME,
            message: format!("invalid client setting `{key}={shown}`: {description}"),
        };
    }
    let mut class = class_of(error);
    let mut message = error.to_string();
    if let Some((code, reason)) = context.last_error() {
        let last = classify(code);
        if matches!(class, Class::Transient | Class::Other)
            && matches!(last, Class::Auth | Class::Tls)
        {
            class = last;
            message = format!("{message} ({reason})");
        } else if class == Class::Transient {
            message = format!("{message} (last broker error: {reason})");
        }
    }
    match class {
        Class::Auth => BackendError::Auth {
            backend: SCHEME,
            message,
        },
        Class::Tls => BackendError::Tls {
            backend: SCHEME,
            message,
        },
        Class::Transient => BackendError::Unreachable {
            backend: SCHEME,
            endpoint: endpoint.to_owned(),
            message,
        },
        Class::Rebalance | Class::Other => BackendError::Server {
            backend: SCHEME,
            message,
        },
    }
}

fn join_error(error: tokio::task::JoinError) -> BackendError {
    BackendError::Server {
        backend: SCHEME,
        message: format!("a blocking rdkafka call failed: {error}"),
    }
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
    if let Some(password) = &url.password {
        config.set("sasl.password", password.expose());
    }
    if (url.username.is_some() || url.password.is_some())
        && url.param("security.protocol").is_none()
    {
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
        config.set(key, value);
    }
}

/// Topics on a Kafka cluster (or anything speaking its protocol). See the
/// [module docs](self).
pub struct KafkaBackend {
    url: BackendUrl,
    endpoint: String,
    /// The settings consumers start from (holds the password: never printed).
    consumer_config: ClientConfig,
    /// The local members of each `(topic, group)`.
    groups: Mutex<HashMap<(String, String), Arc<LocalGroup>>>,
    clients: Option<Clients>,
}

/// The clients shared by every producer and topic operation.
struct Clients {
    context: Context,
    producer: Arc<SharedProducer>,
    admin: AdminClient<Context>,
}

/// The idempotent producer every [`KafkaProducer`] of a backend shares, replaced after a
/// fatal error (librdkafka's cure: a broker that lost the producer's sequence state, say).
struct SharedProducer {
    /// Holds the password: never printed.
    config: ClientConfig,
    context: Context,
    current: Mutex<FutureProducer<Context>>,
}

impl SharedProducer {
    fn get(&self) -> FutureProducer<Context> {
        lock(&self.current).clone()
    }

    /// Replaces `failed` by a new producer unless another sender already did.
    fn renew(&self, failed: &FutureProducer<Context>) -> Result<(), KafkaError> {
        let mut current = lock(&self.current);
        if current.client().native_ptr() == failed.client().native_ptr() {
            let fresh = self.config.create_with_context(self.context.clone())?;
            drop_blocking(std::mem::replace(&mut *current, fresh));
        }
        Ok(())
    }
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
        let context = Context::default();
        let mut producer_config = base_config(&url);
        producer_config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "60000");
        apply_params(&mut producer_config, &url);
        let producer: FutureProducer<Context> = producer_config
            .create_with_context(context.clone())
            .map_err(|e| backend_error(&e, &context, &endpoint))?;
        let producer = Arc::new(SharedProducer {
            config: producer_config,
            context: context.clone(),
            current: Mutex::new(producer),
        });
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
            url,
            endpoint,
            consumer_config,
            groups: Mutex::default(),
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
            let producer: Box<dyn RemoteProducer> = Box::new(KafkaProducer {
                topic: topic.to_owned(),
                endpoint: self.endpoint.clone(),
                producer: Arc::clone(&clients.producer),
                context: clients.context.clone(),
            });
            Ok(producer)
        })
    }

    fn join<'a>(
        &'a self,
        topic: &'a str,
        group: &'a str,
        partitions: u32,
    ) -> BoxFuture<'a, Result<Box<dyn RemoteMember>, BackendError>> {
        Box::pin(async move {
            let local = Arc::clone(
                lock(&self.groups)
                    .entry((topic.to_owned(), group.to_owned()))
                    .or_insert_with(|| {
                        Arc::new(LocalGroup {
                            expected: partitions as usize,
                            epoch: AtomicU64::new(0),
                            members: Mutex::default(),
                            last_join: Mutex::new(Instant::now()),
                        })
                    }),
            );
            let state = Arc::new(MemberState::default());
            lock(&local.members).push(Arc::clone(&state));
            local.epoch.fetch_add(1, Ordering::AcqRel);
            *lock(&local.last_join) = Instant::now();
            let context = Context {
                member: Some((Arc::clone(&local), Arc::clone(&state))),
                ..Context::default()
            };
            let mut config = self.consumer_config.clone();
            config.set("group.id", group);
            // Creating a consumer starts librdkafka's threads and the stream's wake task: no
            // network wait, so it is fine on an async worker.
            let consumer: StreamConsumer<Context> = config
                .create_with_context(context.clone())
                .map_err(|e| backend_error(&e, &context, &self.endpoint))?;
            // Subscribing does not wait for the assignment: the members of a segment join
            // one after the other, and the group settles while they poll.
            consumer
                .subscribe(&[topic])
                .map_err(|e| backend_error(&e, &context, &self.endpoint))?;
            let member: Box<dyn RemoteMember> = Box::new(KafkaMember {
                topic: topic.to_owned(),
                group: group.to_owned(),
                endpoint: self.endpoint.clone(),
                consumer: Some(Arc::new(consumer)),
                context,
                local,
                state,
                settled: false,
                held: Vec::new(),
                held_round: 0,
                outage: None,
                pending: None,
            });
            Ok(member)
        })
    }
}

/// Appends to one Kafka topic through the backend's shared idempotent producer.
pub struct KafkaProducer {
    topic: String,
    endpoint: String,
    producer: Arc<SharedProducer>,
    context: Context,
}

impl fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Sends `payloads` to `partition` of `topic` and waits until all are acknowledged.
async fn send_all(
    producer: &FutureProducer<Context>,
    topic: &str,
    partition: i32,
    payloads: &[Vec<u8>],
) -> Result<(), KafkaError> {
    let mut pending = Vec::with_capacity(payloads.len());
    for payload in payloads {
        // Enqueue all, then wait for all: the batch travels together, and idempotence keeps
        // it in order through retries.
        loop {
            let record = FutureRecord::<(), [u8]>::to(topic)
                .partition(partition)
                .payload(payload.as_slice());
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // librdkafka's local queue is full: wait for deliveries to drain it.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(error),
            Err(_canceled) => return Err(KafkaError::Canceled),
        }
    }
    Ok(())
}

impl RemoteProducer for KafkaProducer {
    fn send<'a>(
        &'a mut self,
        partition: u32,
        payloads: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let partition = i32::try_from(partition).map_err(|_| BackendError::Topic {
                backend: SCHEME,
                topic: self.topic.clone(),
                message: format!("partition {partition} does not exist"),
            })?;
            let mut renewed = false;
            loop {
                let producer = self.producer.get();
                let Err(error) = send_all(&producer, &self.topic, partition, payloads).await else {
                    return Ok(());
                };
                match producer.client().fatal_error() {
                    // Once, with a new producer: the whole batch again (at-least-once).
                    Some(_) if !renewed => {
                        self.producer
                            .renew(&producer)
                            .map_err(|e| backend_error(&e, &self.context, &self.endpoint))?;
                        renewed = true;
                    }
                    Some((code, reason)) => {
                        return Err(BackendError::Server {
                            backend: SCHEME,
                            message: format!("fatal producer error {code}: {reason}"),
                        });
                    }
                    None => return Err(backend_error(&error, &self.context, &self.endpoint)),
                }
            }
        })
    }
}

/// One consumer of a Kafka consumer group.
pub struct KafkaMember {
    topic: String,
    group: String,
    endpoint: String,
    /// `None` once left. An `Arc` so that blocking calls (commit, close) run off the async
    /// workers.
    consumer: Option<Arc<StreamConsumer<Context>>>,
    context: Context,
    local: Arc<LocalGroup>,
    state: Arc<MemberState>,
    /// Whether the local group has settled once (from then on records go out as read).
    settled: bool,
    /// Records read before the group settled, all of assignment round `held_round`.
    held: Vec<Delivery>,
    held_round: u64,
    /// When the current run of transient errors began.
    outage: Option<Instant>,
    /// A fatal error met after records were read: returned by the next poll.
    pending: Option<BackendError>,
}

impl fmt::Debug for KafkaMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaMember")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl Drop for KafkaMember {
    fn drop(&mut self) {
        self.forget();
        if let Some(consumer) = self.consumer.take() {
            drop_blocking(consumer);
        }
    }
}

fn delivery(message: &BorrowedMessage<'_>) -> Delivery {
    let millis = message.timestamp().to_millis().unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    Delivery {
        partition: u32::try_from(message.partition()).unwrap_or_default(),
        offset: u64::try_from(message.offset()).unwrap_or_default(),
        timestamp_nanos: u64::try_from(millis)
            .unwrap_or_default()
            .saturating_mul(1_000_000),
        payload: message.payload().unwrap_or_default().to_vec(),
    }
}

impl KafkaMember {
    /// Leaves the local group's books, so that the others do not wait for this member.
    fn forget(&self) {
        lock(&self.local.members).retain(|m| !Arc::ptr_eq(m, &self.state));
    }

    /// Until the local group settles, keeps `batch` back and returns nothing; then returns
    /// what was kept.
    fn hold_back(&mut self, batch: Vec<Delivery>, max: usize) -> Vec<Delivery> {
        if self.settled {
            return batch;
        }
        self.held.extend(batch);
        if !self.local.settled() {
            return Vec::new();
        }
        self.settled = true;
        let assigned = lock(&self.state.assignment).clone().unwrap_or_default();
        // Only partitions still owned: a revoked one is read again by its owner.
        self.held
            .retain(|d| i32::try_from(d.partition).is_ok_and(|p| assigned.contains(&p)));
        let rest = self.held.split_off(self.held.len().min(max));
        std::mem::replace(&mut self.held, rest)
    }

    fn consumer(&self) -> Result<Arc<StreamConsumer<Context>>, BackendError> {
        self.consumer.clone().ok_or_else(|| BackendError::Server {
            backend: SCHEME,
            message: format!("member of group `{}` has left", self.group),
        })
    }

    fn error(&self, error: &KafkaError) -> BackendError {
        backend_error(error, &self.context, &self.endpoint)
    }

    /// Handles an error read from the consumer: `Err` if the caller must see it now.
    fn consumer_error(&mut self, error: &KafkaError) -> Result<(), BackendError> {
        let fatal = matches!(error, KafkaError::MessageConsumptionFatal(_));
        match class_of(error) {
            Class::Auth | Class::Tls => return Err(self.error(error)),
            _ if fatal => return Err(self.error(error)),
            _ => {}
        }
        // librdkafka reports transport errors and keeps reconnecting: report them only when
        // they last.
        let since = *self.outage.get_or_insert_with(Instant::now);
        if since.elapsed() > OUTAGE_LIMIT {
            return Err(BackendError::Unreachable {
                backend: SCHEME,
                endpoint: self.endpoint.clone(),
                message: format!("no record for {OUTAGE_LIMIT:?} of errors; last: {error}"),
            });
        }
        Ok(())
    }
}

/// Commits `positions` (last processed offsets) for the partitions `consumer` still owns.
/// Blocking.
fn commit_owned(
    consumer: &StreamConsumer<Context>,
    topic: &str,
    positions: &[(u32, u64)],
) -> Result<(), KafkaError> {
    let assignment = consumer.assignment()?;
    let mut offsets = TopicPartitionList::new();
    for &(partition, offset) in positions {
        let (Ok(partition), Ok(next)) = (i32::try_from(partition), i64::try_from(offset + 1))
        else {
            continue;
        };
        // A partition revoked meanwhile is left to its new owner, which reads it again.
        if assignment.find_partition(topic, partition).is_some() {
            offsets.add_partition_offset(topic, partition, Offset::Offset(next))?;
        }
    }
    if offsets.count() == 0 {
        return Ok(());
    }
    consumer.commit(&offsets, CommitMode::Sync)
}

impl RemoteMember for KafkaMember {
    fn poll(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, BackendError>> {
        Box::pin(async move {
            if let Some(error) = self.pending.take() {
                return Err(error);
            }
            let max = max.max(1);
            if self.settled && !self.held.is_empty() {
                let rest = self.held.split_off(self.held.len().min(max));
                return Ok(std::mem::replace(&mut self.held, rest));
            }
            let consumer = self.consumer()?;
            let deadline = tokio::time::Instant::now() + wait;
            let mut batch = Vec::new();
            let mut stream = consumer.stream();
            while batch.len() < max {
                let next = if batch.is_empty() {
                    match tokio::time::timeout_at(deadline, stream.next()).await {
                        Ok(next) => next,
                        Err(_elapsed) => break,
                    }
                } else {
                    // Only what is already there: the batch goes out without waiting more.
                    match stream.next().now_or_never() {
                        Some(next) => next,
                        None => break,
                    }
                };
                match next {
                    Some(Ok(message)) => {
                        self.outage = None;
                        if !self.settled {
                            // A new assignment round restarts every partition from its
                            // committed offset: what was held from the last round goes.
                            let round = self.state.assignments.load(Ordering::Acquire);
                            if round != self.held_round {
                                self.held.clear();
                                batch.clear();
                                self.held_round = round;
                            }
                        }
                        batch.push(delivery(&message));
                    }
                    Some(Err(error)) => {
                        if let Err(error) = self.consumer_error(&error) {
                            if batch.is_empty() {
                                return Err(error);
                            }
                            self.pending = Some(error);
                            break;
                        }
                    }
                    // A consumer stream never ends.
                    None => break,
                }
            }
            Ok(self.hold_back(batch, max))
        })
    }

    fn commit<'a>(
        &'a mut self,
        positions: &'a [(u32, u64)],
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            if positions.is_empty() {
                return Ok(());
            }
            let consumer = self.consumer()?;
            let started = Instant::now();
            let mut backoff = Duration::from_millis(100);
            loop {
                let consumer = Arc::clone(&consumer);
                let topic = self.topic.clone();
                let owned = positions.to_vec();
                // A synchronous commit waits for the coordinator: off the async workers.
                let committed =
                    tokio::task::spawn_blocking(move || commit_owned(&consumer, &topic, &owned));
                let result = tokio::time::timeout(OUTAGE_LIMIT, committed)
                    .await
                    .map_err(|_| BackendError::Unreachable {
                        backend: SCHEME,
                        endpoint: self.endpoint.clone(),
                        message: format!("offset commit still waiting after {OUTAGE_LIMIT:?}"),
                    })?
                    .map_err(join_error)?;
                let Err(error) = result else {
                    return Ok(());
                };
                match class_of(&error) {
                    // The group moved on (its partitions are being reassigned): the records
                    // are read again by their next owner, unless a later commit covers them.
                    Class::Rebalance => return Ok(()),
                    Class::Transient if started.elapsed() < OUTAGE_LIMIT => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                    _ if code_of(&error) == Some(RDKafkaErrorCode::NoOffset) => return Ok(()),
                    _ => return Err(self.error(&error)),
                }
            }
        })
    }

    fn leave(&mut self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            self.forget();
            let Some(consumer) = self.consumer.take() else {
                return Ok(());
            };
            // Closing sends LeaveGroup, so the partitions move at once; it blocks until done.
            let closing = tokio::task::spawn_blocking(move || {
                consumer.unsubscribe();
                drop(consumer);
            });
            match tokio::time::timeout(LEAVE_TIMEOUT, closing).await {
                Ok(joined) => joined.map_err(join_error),
                // Still closing: it finishes in the background; the group will time it out.
                Err(_) => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_auth_tls_and_outages() {
        assert_eq!(classify(RDKafkaErrorCode::Authentication), Class::Auth);
        assert_eq!(
            classify(RDKafkaErrorCode::TopicAuthorizationFailed),
            Class::Auth
        );
        assert_eq!(
            classify(RDKafkaErrorCode::GroupAuthorizationFailed),
            Class::Auth
        );
        assert_eq!(classify(RDKafkaErrorCode::SSL), Class::Tls);
        assert_eq!(classify(RDKafkaErrorCode::AllBrokersDown), Class::Transient);
        assert_eq!(
            classify(RDKafkaErrorCode::BrokerTransportFailure),
            Class::Transient
        );
        assert_eq!(
            classify(RDKafkaErrorCode::RebalanceInProgress),
            Class::Rebalance
        );
    }

    #[test]
    fn a_timeout_after_a_refused_password_is_an_auth_error() {
        let context = Context::default();
        context.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: Authentication failed",
        );
        let error = backend_error(
            &KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut),
            &context,
            "h:1",
        );
        assert!(matches!(error, BackendError::Auth { .. }), "{error}");
        assert!(error.is_fatal());
        let down = backend_error(
            &KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown),
            &Context::default(),
            "h:1",
        );
        assert!(matches!(down, BackendError::Unreachable { .. }), "{down}");
        assert!(!down.is_fatal());
    }

    #[test]
    fn a_bad_secret_setting_is_not_printed() {
        let error = KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "invalid".to_owned(),
            "sasl.password".to_owned(),
            "hunter2".to_owned(),
        );
        let shown = backend_error(&error, &Context::default(), "h:1").to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
    }

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
}
