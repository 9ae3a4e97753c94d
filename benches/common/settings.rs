//! The settings of a bench run: environment variables, and whether this is `cargo bench`.

use std::str::FromStr;

/// Whether the binary runs as `cargo bench` (which passes `--bench`). Without it this is
/// `cargo test --benches`, which runs every bench once as a smoke test: keep that short.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Env `name` parsed as a `T`, or `default` when it is unset or does not parse.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether env `name` is set to `1`.
pub fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}
