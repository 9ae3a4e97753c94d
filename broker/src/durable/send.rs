//! Async sends to a file-backed partition: the file work goes to the topic's writer thread,
//! and the send waits for the reply (and for room, while an `Overflow::Block` partition is
//! full) without blocking the executor.

use std::future::poll_fn;
use std::task::Poll;

use crate::block::Entry;
use crate::durable::{Stop, Writer};
use crate::error::SendError;
use crate::notify::{Notifier, Wake};
use crate::partition::Partition;
use crate::record::Position;
use crate::sync::next_id;

/// Appends `entries` to `part` through `writer`, in order; returns the position of the last
/// one (`None` for no entries), or the error and the values not appended.
pub(crate) async fn send<T>(
    writer: &Writer<T>,
    part: &Partition<T>,
    mut entries: Vec<Entry<T>>,
) -> Result<Option<Position>, SendError<Vec<T>>> {
    let position = |offset| Position {
        partition: part.index,
        offset,
    };
    let mut last = None;
    while !entries.is_empty() {
        let outcome = writer.submit(part.index, entries).await;
        last = outcome.last.map(position).or(last);
        let Some((stop, rest)) = outcome.stopped else {
            break;
        };
        entries = rest;
        let values = |entries: Vec<Entry<T>>| entries.into_iter().map(|e| e.value).collect();
        match stop {
            Stop::Full => room(part).await,
            Stop::Closed => return Err(SendError::Closed(values(entries))),
            Stop::Storage(message) => {
                return Err(SendError::Storage {
                    message,
                    value: values(entries),
                });
            }
            Stop::NotDurable(message) => {
                return Err(SendError::NotDurable {
                    position: last.expect("a record that is not durable was appended"),
                    message,
                });
            }
        }
    }
    Ok(last)
}

/// The error of a one-value send, from the error of a batch of that one value.
pub(crate) fn single<T>(err: SendError<Vec<T>>) -> SendError<T> {
    let one = |mut values: Vec<T>| values.pop().expect("the value that was not sent");
    match err {
        SendError::Closed(values) => SendError::Closed(one(values)),
        SendError::NoSuchPartition {
            partition,
            partitions,
            value,
        } => SendError::NoSuchPartition {
            partition,
            partitions,
            value: one(value),
        },
        SendError::Storage { message, value } => SendError::Storage {
            message,
            value: one(value),
        },
        SendError::NotDurable { position, message } => SendError::NotDurable { position, message },
    }
}

/// Waits until `part` has room (or is closed), registered with its `space` notifier: the
/// register-then-check-again protocol of `notify`.
async fn room<T>(part: &Partition<T>) {
    struct Registered<'a>(&'a Notifier, u64);
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            self.0.unregister(self.1);
        }
    }
    let has_room = || !part.is_full() || part.is_closed();
    let registered = Registered(&part.space, next_id());
    poll_fn(|cx| {
        if has_room() {
            return Poll::Ready(());
        }
        registered
            .0
            .register_fenced(registered.1, &Wake::Task(cx.waker().clone()));
        if has_room() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}
