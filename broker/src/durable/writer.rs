//! The thread that does a file-backed topic's file work for async producers, so that an
//! async send never blocks the executor's thread on a `write` or an `fsync`.
//!
//! An async send hands its entries to the queue and waits for the reply; the writer drains
//! the queue, writes every entry through the partition's [`Journal`], fsyncs each partition
//! it touched once (with `Durability::Always`: the appends queued during an fsync share the
//! next one), then publishes the records and wakes the senders. It also runs the fsyncs of
//! `Durability::Interval`. Blocking sends do their file work on their own thread, through
//! the same journals.
//!
//! A reply is `Queued` until the writer takes its request, then `Taken`, then `Done`. A send
//! future dropped while its request is `Queued` cancels it (the writer drops its entries);
//! once `Taken`, the entries are appended whether or not anybody waits for the reply.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::block::Entry;
use crate::durable::journal::{Journal, JournalFailure, Written};
use crate::partition::{ClaimError, Partition};
use crate::storage::Durability;

/// Why a request stopped before its last entry.
pub(crate) enum Stop {
    /// `Overflow::Block` and full: wait for room and send the rest again.
    Full,
    Closed,
    /// Encoding or writing failed; nothing of the failed entry was kept.
    Storage(String),
    /// Appended and visible, but the fsync failed (nothing is left over).
    NotDurable(String),
}

/// What a request came to.
pub(crate) struct Outcome<T> {
    /// The offset of the last entry appended, if any was.
    pub(crate) last: Option<u64>,
    /// Why it stopped early, and the entries not appended (the failed one first).
    pub(crate) stopped: Option<(Stop, Vec<Entry<T>>)>,
}

enum ReplyState<T> {
    Queued(Option<Waker>),
    Taken(Option<Waker>),
    Done(Outcome<T>),
    /// The sender went away.
    Cancelled,
}

/// Where the writer puts a request's outcome.
struct Reply<T> {
    state: Mutex<ReplyState<T>>,
}

impl<T> Reply<T> {
    /// The writer takes the request: false if its sender went away before.
    fn take(&self) -> bool {
        let mut state = lock(&self.state);
        match std::mem::replace(&mut *state, ReplyState::Cancelled) {
            ReplyState::Queued(waker) => {
                *state = ReplyState::Taken(waker);
                true
            }
            _ => false,
        }
    }

    fn complete(&self, outcome: Outcome<T>) {
        let mut state = lock(&self.state);
        match std::mem::replace(&mut *state, ReplyState::Done(outcome)) {
            ReplyState::Queued(waker) | ReplyState::Taken(waker) => {
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            // Nobody waits: the outcome goes with the reply.
            ReplyState::Cancelled | ReplyState::Done(_) => *state = ReplyState::Cancelled,
        }
    }
}

/// A partition and the journal in front of it.
pub(crate) type Journaled<T> = (crate::sync::Arc<Partition<T>>, Arc<Journal<T>>);

struct Request<T> {
    partition: u32,
    entries: Vec<Entry<T>>,
    reply: Arc<Reply<T>>,
}

struct Queue<T> {
    requests: VecDeque<Request<T>>,
    /// The writer waits on `Shared::wake` (so a submit must notify it).
    idle: bool,
    stop: bool,
}

struct Shared<T> {
    queue: Mutex<Queue<T>>,
    wake: Condvar,
}

/// A file-backed topic's writer thread; stops it when dropped.
pub(crate) struct Writer<T> {
    shared: Arc<Shared<T>>,
}

fn lock<X>(mutex: &Mutex<X>) -> MutexGuard<'_, X> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: Send + Sync + 'static> Writer<T> {
    /// Starts the writer of a topic whose partitions (with the journals in front of them)
    /// are `partitions`.
    pub(crate) fn start(partitions: Vec<Journaled<T>>, durability: Durability) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                requests: VecDeque::new(),
                idle: false,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let interval = match durability {
            Durability::Interval(every) => Some(every),
            Durability::Always | Durability::Never => None,
        };
        std::thread::Builder::new()
            .name("broker-writer".to_owned())
            .spawn(move || run(&thread_shared, &partitions, interval))
            .expect("the operating system refused a thread for a file-backed topic's writer");
        Self { shared }
    }
}

impl<T> Writer<T> {
    /// Hands `entries` for `partition` to the writer; the future resolves to their outcome.
    pub(crate) fn submit(&self, partition: u32, entries: Vec<Entry<T>>) -> Submitted<T> {
        let reply = Arc::new(Reply {
            state: Mutex::new(ReplyState::Queued(None)),
        });
        let mut queue = lock(&self.shared.queue);
        queue.requests.push_back(Request {
            partition,
            entries,
            reply: Arc::clone(&reply),
        });
        if queue.idle {
            queue.idle = false;
            self.shared.wake.notify_one();
        }
        Submitted { reply }
    }
}

impl<T> Drop for Writer<T> {
    fn drop(&mut self) {
        lock(&self.shared.queue).stop = true;
        self.shared.wake.notify_one();
    }
}

/// A request handed to the writer: resolves to its outcome. Dropping it before the writer
/// took the request cancels the request.
pub(crate) struct Submitted<T> {
    reply: Arc<Reply<T>>,
}

impl<T> Future for Submitted<T> {
    type Output = Outcome<T>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<T>> {
        let mut state = lock(&self.reply.state);
        match &mut *state {
            ReplyState::Queued(waker) | ReplyState::Taken(waker) => {
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            ReplyState::Done(_) => match std::mem::replace(&mut *state, ReplyState::Cancelled) {
                ReplyState::Done(outcome) => Poll::Ready(outcome),
                _ => unreachable!("matched above"),
            },
            ReplyState::Cancelled => unreachable!("polled after completion"),
        }
    }
}

impl<T> Drop for Submitted<T> {
    fn drop(&mut self) {
        *lock(&self.reply.state) = ReplyState::Cancelled;
    }
}

/// The writer's loop: serve requests as they come, and run the interval's fsyncs.
fn run<T>(shared: &Shared<T>, partitions: &[Journaled<T>], interval: Option<Duration>) {
    let mut next_sync = interval.map(|every| Instant::now() + every);
    loop {
        let requests = {
            let mut queue = lock(&shared.queue);
            loop {
                if !queue.requests.is_empty() {
                    break std::mem::take(&mut queue.requests);
                }
                if queue.stop {
                    return;
                }
                let now = Instant::now();
                if next_sync.is_some_and(|at| at <= now) {
                    break VecDeque::new();
                }
                queue.idle = true;
                queue = match next_sync {
                    Some(at) => {
                        let waited = shared.wake.wait_timeout(queue, at - now);
                        waited.unwrap_or_else(|p| p.into_inner()).0
                    }
                    None => shared.wake.wait(queue).unwrap_or_else(|p| p.into_inner()),
                };
                queue.idle = false;
            }
        };
        serve(requests, partitions);
        if let (Some(at), Some(every)) = (next_sync, interval)
            && at <= Instant::now()
        {
            for (_, journal) in partitions {
                // A failed interval fsync is tried again at the next one.
                let _ = journal.sync_now();
            }
            next_sync = Some(Instant::now() + every);
        }
    }
}

/// A request being served: the records written so far, and why it stopped, if it did.
struct Serving<T> {
    reply: Arc<Reply<T>>,
    partition: usize,
    written: Vec<Written<T>>,
    stopped: Option<(Stop, Vec<Entry<T>>)>,
}

/// Writes every request's entries, fsyncs each touched partition once, publishes, replies.
fn serve<T>(requests: VecDeque<Request<T>>, partitions: &[Journaled<T>]) {
    let mut serving = Vec::with_capacity(requests.len());
    // The end of what was written, per partition: what its fsync must cover.
    let mut sync_to: Vec<Option<u64>> = vec![None; partitions.len()];
    for request in requests {
        if !request.reply.take() {
            continue; // cancelled: its entries are dropped unwritten
        }
        let p = request.partition as usize;
        let (part, journal) = &partitions[p];
        let mut written = Vec::with_capacity(request.entries.len());
        let mut stopped = None;
        let mut entries = request.entries.into_iter();
        while let Some(entry) = entries.next() {
            let stop = match journal.write(part, entry) {
                Ok(record) => {
                    sync_to[p] = Some(record.offset() + 1);
                    written.push(record);
                    continue;
                }
                Err(JournalFailure::Refused(ClaimError::Full, entry)) => (Stop::Full, entry),
                Err(JournalFailure::Refused(ClaimError::Closed, entry)) => (Stop::Closed, entry),
                Err(JournalFailure::Storage(message, entry)) => (Stop::Storage(message), entry),
                Err(JournalFailure::NotDurable(..)) => unreachable!("`write` does not sync"),
            };
            let rest = std::iter::once(stop.1).chain(entries).collect();
            stopped = Some((stop.0, rest));
            break;
        }
        serving.push(Serving {
            reply: request.reply,
            partition: p,
            written,
            stopped,
        });
    }
    let synced: Vec<Result<(), String>> = sync_to
        .iter()
        .zip(partitions)
        .map(|(to, (_, journal))| to.map_or(Ok(()), |to| journal.sync_for(to)))
        .collect();
    for Serving {
        reply,
        partition,
        written,
        mut stopped,
    } in serving
    {
        let part = &partitions[partition].0;
        let last = written.last().map(Written::offset);
        let mut unsynced = synced[partition].clone().err();
        for mut record in written {
            unsynced = unsynced.or(record.unsynced.take_message());
            record.publish(part);
        }
        if let (None, Some(message)) = (&stopped, unsynced) {
            stopped = Some((Stop::NotDurable(message), Vec::new()));
        }
        reply.complete(Outcome { last, stopped });
    }
}
