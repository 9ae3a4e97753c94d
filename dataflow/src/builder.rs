//! The typestate of the builders `#[pipeline]` generates: each source and sink parameter is
//! [`Unbound`] until its setter binds it, and `start` compiles only once every one is
//! [`Bound`]. Forgetting one is a compile error that names it:
//!
//! ```compile_fail,E0277
//! use dataflow::{pipeline, Sink, Source};
//!
//! #[pipeline]
//! fn copy(input: Source<u32>, out: Sink<u32>) {
//!     input.to(out);
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let running = Copy::builder().input("numbers").start().await?;
//! //                                              ^^^^^ sink `out` is not bound
//! # Ok(())
//! # }
//! ```

use crate::spec::Binding;

/// A source or sink that no setter has bound yet.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unbound;

/// A source or sink bound to a topic of `T`.
#[derive(Debug, Clone)]
pub struct Bound<T>(pub(crate) Binding<T>);

impl<T> Bound<T> {
    /// What it is bound to.
    pub fn binding(&self) -> &Binding<T> {
        &self.0
    }
}

/// A parameter state that holds a binding: [`Bound`] only. The generated builder requires it
/// of every parameter in `start`, through a trait of the pipeline's own that names the
/// parameter when it is missing.
pub trait IsBound<T> {
    /// The binding.
    fn into_binding(self) -> Binding<T>;
}

#[diagnostic::do_not_recommend]
impl<T> IsBound<T> for Bound<T> {
    fn into_binding(self) -> Binding<T> {
        self.0
    }
}
