//! The runtime behind generated pipelines: segments, tasks, outputs.

pub(crate) mod checkpoint;
pub(crate) mod frame;
pub(crate) mod launch;
pub(crate) mod output;
pub(crate) mod port;
pub(crate) mod rejoin;
pub(crate) mod running;
pub(crate) mod state;
pub(crate) mod task;
