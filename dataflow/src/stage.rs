//! Stages: plain functions and closures, typed by the operator that uses them.
//!
//! A stage is an ordinary function (`fn(T) -> U` for `map`, `fn(&T) -> bool` for `filter`,
//! ...), still callable and unit-testable on its own. The operator decides what a call means,
//! as with iterator adapters. `#[stage]` is optional: it checks the function and, with
//! `name = "..."`, gives it the name shown in metrics and graphs.

use std::fmt;
use std::ops::Deref;

/// A function with a name, made by `#[stage(name = "...")]`.
///
/// It dereferences to the function, so the stage stays callable as `parse(line)`.
pub struct Named<F> {
    name: &'static str,
    function: F,
}

impl<F> Named<F> {
    /// Names `function`.
    pub const fn new(name: &'static str, function: F) -> Self {
        Self { name, function }
    }

    /// The stage's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<F> Deref for Named<F> {
    type Target = F;

    fn deref(&self) -> &F {
        &self.function
    }
}

impl<F> fmt::Debug for Named<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Named").field("name", &self.name).finish()
    }
}

/// Marks types that can be the key of `key_by`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a key",
    label = "this key does not implement `Hash + Eq + Clone + Send + Sync + 'static`",
    note = "keys decide the partition and index keyed state: they must implement `Hash`, `Eq`, `Clone`, `Send` and `Sync`"
)]
pub trait Key: std::hash::Hash + Eq + Clone + Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static> Key for K {}

/// Marks values that can cross a repartition (or any other topic between two tasks).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross a repartition",
    label = "this value is sent to another task",
    note = "values sent between tasks through a topic must implement `Clone + Send + Sync + 'static`"
)]
pub trait Exchange: Clone + Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + 'static> Exchange for T {}

/// Marks values used by more than one downstream stage.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is used by more than one downstream stage, so it must implement `Clone`",
    label = "this stream fans out"
)]
pub trait FanOut: Clone {}

#[diagnostic::do_not_recommend]
impl<T: Clone> FanOut for T {}

/// Marks values that can be written to a topic.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be written to a topic",
    label = "this value is written to a topic",
    note = "topic values must implement `Send + Sync + 'static`"
)]
pub trait Deliver: Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Send + Sync + 'static> Deliver for T {}
