//! What each Kafka client of the bridge carries: its last reported error (librdkafka reports
//! the real cause of a timeout, a refused password, only through the error callback), and for
//! a consumer the books of the group members this process joins, kept by the rebalance
//! callbacks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::lock;

/// The last error librdkafka reported to a client (through its error callback), to explain
/// an operation that merely timed out (a refused password shows only there).
/// On a consumer, it also follows the member's assignment.
#[derive(Clone, Default)]
pub(super) struct Context {
    last_error: Arc<Mutex<Option<(RDKafkaErrorCode, String)>>>,
    pub(super) member: Option<(Arc<LocalGroup>, Arc<MemberState>)>,
}

impl Context {
    /// The context of a consumer that is `member` of the local `group`.
    pub(super) fn for_member(group: Arc<LocalGroup>, member: Arc<MemberState>) -> Self {
        Self {
            member: Some((group, member)),
            ..Self::default()
        }
    }

    pub(super) fn last_error(&self) -> Option<(RDKafkaErrorCode, String)> {
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

/// How long after the last local join a member holds records back while the group settles.
pub(super) const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// The members of one consumer group of one topic in this process.
pub(super) struct LocalGroup {
    /// Members the runtime joins per process (one per partition).
    pub(super) expected: usize,
    /// Bumped at each local join.
    pub(super) epoch: AtomicU64,
    pub(super) members: Mutex<Vec<Arc<MemberState>>>,
    pub(super) last_join: Mutex<Instant>,
}

/// What the rebalance callbacks of one member saw.
#[derive(Default)]
pub(super) struct MemberState {
    /// Its place among the local members (the lowest free one when it joined): names its
    /// static identity, so that a member made after a restart or an outage takes the place
    /// of the one it replaces.
    pub(super) slot: usize,
    /// Its partitions, `None` while revoked.
    pub(super) assignment: Mutex<Option<Vec<i32>>>,
    /// The group's epoch at its last assignment.
    pub(super) assigned_at: AtomicU64,
    /// Bumped at each assignment.
    pub(super) assignments: AtomicU64,
}

impl LocalGroup {
    /// The books of a group of which this process joins `expected` members.
    pub(super) fn new(expected: usize) -> Self {
        Self {
            expected,
            epoch: AtomicU64::new(0),
            members: Mutex::default(),
            last_join: Mutex::new(Instant::now()),
        }
    }

    /// Whether every local member has joined and got its partitions after the last join,
    /// with no partition given twice (a stale assignment would overlap a fresh one).
    pub(super) fn settled(&self) -> bool {
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
