//! Test support: real servers started by the tests, and the pipelines they run. Each test
//! binary uses part of it.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

pub mod kafka;
pub mod pipelines;
pub mod redis;
/// A real, small file system (the broker's tests use the same).
#[path = "../../broker/tests/support/small_fs.rs"]
pub mod small_fs;

/// `name` on the `PATH`, or at env `env`.
pub fn find_binary(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// `None` (skip) when `binary` is missing, except under `CI=true` where it panics.
pub fn required(binary: Option<PathBuf>, what: &str) -> Option<PathBuf> {
    match binary {
        Some(path) => Some(path),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{what} is required under CI=true (see .ci/run)")
        }
        None => {
            eprintln!("skipped: {what} not found (install it to run this test)");
            None
        }
    }
}

/// A port nobody listens on right now, and one this test binary has not handed out before.
///
/// The tests of one binary run in parallel and each starts its own servers: without the
/// record, two of them can be handed the same port between its release here and a server's
/// bind, and then share one server (or lose both when one kills "its" server).
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// A small deterministic generator for the kill points (xorshift64*), seeded from the
/// clock unless `R2_SEED` is set; the seed is printed, so a failing run can be replayed.
pub struct KillPoints(u64);

impl KillPoints {
    pub fn from_env() -> Self {
        Self::from_env_named("R2_SEED")
    }

    /// The same, seeded from the environment variable `var`.
    pub fn from_env_named(var: &str) -> Self {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("seed {seed} (set {var}={seed} to replay the kill points)");
        Self(seed)
    }

    /// A delay in `0..max_ms` milliseconds.
    pub fn delay(&mut self, max_ms: u64) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        Duration::from_millis(self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % max_ms)
    }
}
