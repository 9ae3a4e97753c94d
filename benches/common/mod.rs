//! Helpers every bench shares, each written once: settings from the environment, the clock
//! and schedule of an open-loop latency run, CPU time from `/proc`, and the numbers of a
//! summary. A bench includes them with `mod common;` (the bridge bench, whose root is
//! `bridges/main.rs`, with a `#[path]`).

#![allow(
    dead_code,
    reason = "each bench binary uses a part of the shared helpers"
)]

pub mod cpu;
pub mod schedule;
pub mod settings;
pub mod stats;
