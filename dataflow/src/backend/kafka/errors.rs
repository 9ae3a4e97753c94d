//! What an rdkafka error means for the pipeline: fatal (auth, TLS), an outage librdkafka
//! rides out, or a rebalance. A timeout is explained by the client's last reported error
//! (see `context.rs`): librdkafka reports a refused password only through that callback.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::SCHEME;
use super::context::Context;
use crate::backend::BackendError;
use crate::backend::url::is_secret_key;

/// What an error code means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Auth,
    Tls,
    /// Brokers down or unreachable, a coordinator or leader moving: librdkafka retries.
    Transient,
    /// The group is rebalancing, or this member's generation is over.
    Rebalance,
    /// Another consumer joined with this member's `group.instance.id`.
    Fenced,
    Other,
}

pub(super) fn classify(code: RDKafkaErrorCode) -> Class {
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
        | C::AssignmentLost
        | C::StaleMemberEpoch
        | C::FencedMemberEpoch => Class::Rebalance,
        C::FencedInstanceId => Class::Fenced,
        _ => Class::Other,
    }
}

/// The code of `error`, if it has one.
pub(super) fn code_of(error: &KafkaError) -> Option<RDKafkaErrorCode> {
    match error {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

pub(super) fn class_of(error: &KafkaError) -> Class {
    code_of(error).map_or(Class::Other, classify)
}

/// Turns an rdkafka error into a [`BackendError`]. An error that says only "timed out" or
/// "transport" is explained by the client's last reported error when that one is an
/// authentication or TLS failure (librdkafka keeps retrying those, so operations time out).
pub(super) fn backend_error(error: &KafkaError, context: &Context, endpoint: &str) -> BackendError {
    if let KafkaError::ClientConfig(_, description, key, value) = error {
        // A setting from the URL that librdkafka refuses: the URL's fault, and fatal.
        let shown = if is_secret_key(key) { "***" } else { value };
        return BackendError::InvalidUrl {
            url: format!("{SCHEME}://{endpoint}"),
            reason: format!("invalid client setting `{key}={shown}`: {description}"),
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
        // Two live processes with one static identity: the URL's fault, and fatal (retrying
        // would fence the other one in turn).
        Class::Fenced => BackendError::InvalidUrl {
            url: format!("{SCHEME}://{endpoint}"),
            reason: format!(
                "{message}: another live consumer joined with this member's group.instance.id; \
                 give each process its own"
            ),
        },
        Class::Rebalance | Class::Other => BackendError::Server {
            backend: SCHEME,
            message,
        },
    }
}

pub(super) fn join_error(error: tokio::task::JoinError) -> BackendError {
    BackendError::Server {
        backend: SCHEME,
        message: format!("a blocking rdkafka call failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::client::ClientContext;

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
}
