//! What generated code needs and users do not. Not a public API: it may change in any
//! release.

use std::cell::Cell;

pub use crate::runtime::launch::Launch;
pub use crate::runtime::output::Output;
pub use crate::runtime::task::{Cx, Task};
pub use crate::stage::Named;
pub use broker::Topic;
pub use std::collections::HashMap;

/// A stage as written in a pipeline, before the operator looks at it.
pub struct StageArg<F>(Cell<Option<F>>);

impl<F> StageArg<F> {
    #[inline(always)]
    pub fn new(stage: F) -> Self {
        Self(Cell::new(Some(stage)))
    }
}

/// Chosen for `#[stage(name = "...")]` functions: the function inside.
pub trait UnwrapNamed {
    type Function;
    fn __dataflow_unwrap(&self) -> Self::Function;
}

impl<F: Copy> UnwrapNamed for StageArg<Named<F>> {
    type Function = F;
    #[inline(always)]
    fn __dataflow_unwrap(&self) -> F {
        *self.0.take().expect("unwrapped once")
    }
}

/// Chosen for everything else: the stage itself.
pub trait UnwrapPlain {
    type Function;
    fn __dataflow_unwrap(&self) -> Self::Function;
}

impl<F> UnwrapPlain for &StageArg<F> {
    type Function = F;
    #[inline(always)]
    fn __dataflow_unwrap(&self) -> F {
        self.0.take().expect("unwrapped once")
    }
}

/// The name of a `#[stage(name = "...")]` function.
pub trait NameNamed {
    fn __dataflow_name(&self, default: &'static str) -> &'static str;
}

impl<F> NameNamed for Named<F> {
    fn __dataflow_name(&self, _default: &'static str) -> &'static str {
        self.name()
    }
}

/// The name of any other stage: the one the pipeline gives it.
pub trait NamePlain {
    fn __dataflow_name(&self, default: &'static str) -> &'static str;
}

impl<F> NamePlain for &F {
    fn __dataflow_name(&self, default: &'static str) -> &'static str {
        default
    }
}

/// Leaks a graph description once per pipeline type.
pub fn leak<T>(items: Vec<T>) -> &'static [T] {
    Vec::leak(items)
}
