//! CPU used during a run: by this process (the client), by the server, and by every other
//! process on the machine (the noise).

use std::time::Instant;

use crate::common::cpu::{live_threads_cpu_ns, machine_busy_ns};

/// CPU counters at one moment: this process, the server, the whole machine.
#[derive(Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    client_ns: u64,
    server_ns: u64,
    machine_ns: u64,
}

/// CPU used between two samples.
#[derive(Clone, Copy)]
pub struct CpuUse {
    /// CPU time of this process (all its threads), in nanoseconds.
    pub client_ns: u64,
    /// CPU time of the server, in nanoseconds.
    pub server_ns: u64,
    /// Cores kept busy by every other process, on average (other builds and tests on a
    /// shared machine: the noise).
    pub others_cores: f64,
}

impl CpuSample {
    /// `server`: the process id of the broker the run uses.
    pub fn take(server: u32) -> Self {
        Self {
            at: Instant::now(),
            client_ns: live_threads_cpu_ns("self"),
            server_ns: live_threads_cpu_ns(&server.to_string()),
            machine_ns: machine_busy_ns(),
        }
    }

    /// The CPU used from this sample to `later`.
    pub fn until(&self, later: &Self) -> CpuUse {
        let client_ns = later.client_ns.saturating_sub(self.client_ns);
        let server_ns = later.server_ns.saturating_sub(self.server_ns);
        let others = later
            .machine_ns
            .saturating_sub(self.machine_ns)
            .saturating_sub(client_ns + server_ns);
        CpuUse {
            client_ns,
            server_ns,
            others_cores: others as f64 / (later.at - self.at).as_nanos().max(1) as f64,
        }
    }
}
