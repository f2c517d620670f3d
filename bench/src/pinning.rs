//! The pinned method: every server under test runs on one core of its own
//! and the load generator (this process, redis-benchmark) on another, so a
//! server's throughput and CPU per op are its own, not a share of cores it
//! fights the load generator for.
//!
//! `taskset` (util-linux) does the pinning: this process moves itself, all
//! its threads, to [`LOAD_CORE`] at start, and every server is started as
//! `taskset -c SERVER_CORE PROGRAM ...` (the same PID, so `/proc/PID/stat`
//! still reads the server). On a machine with fewer than two cores, or with
//! `--unpinned`, nothing is pinned and the report says so.

use std::sync::OnceLock;

use anyhow::Context;
use tokio::process::Command;

/// The core the load generator runs on.
pub const LOAD_CORE: usize = 0;
/// The core each server under test runs on.
pub const SERVER_CORE: usize = 1;

/// Whether servers are pinned (set once, at start).
static PINNED: OnceLock<bool> = OnceLock::new();

/// Pins this process (every thread) to [`LOAD_CORE`] unless `unpinned` or
/// the machine has one core; returns whether it did.
pub fn pin_load_generator(unpinned: bool) -> anyhow::Result<bool> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pinned = !unpinned && cores > SERVER_CORE;
    if pinned {
        let status = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", &LOAD_CORE.to_string()])
            .arg(std::process::id().to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .context("running taskset (util-linux) to pin the load generator")?;
        anyhow::ensure!(status.success(), "taskset could not pin the load generator");
    }
    let _ = PINNED.set(pinned);
    Ok(pinned)
}

/// A command that runs `program` as a server under test: on
/// [`SERVER_CORE`] when pinned.
pub fn server_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    match PINNED.get().copied().unwrap_or(false) {
        true => {
            let mut command = Command::new("taskset");
            command.args(["-c", &SERVER_CORE.to_string()]).arg(program);
            command
        }
        false => Command::new(program),
    }
}

/// How many cores a server under test may use: one when pinned, else all.
pub fn server_cores() -> usize {
    match PINNED.get().copied().unwrap_or(false) {
        true => 1,
        false => std::thread::available_parallelism().map_or(1, usize::from),
    }
}

/// One sentence for the report's header saying how the run was placed.
pub fn method() -> String {
    match PINNED.get().copied().unwrap_or(false) {
        true => format!(
            "Pinned: each server under test on core {SERVER_CORE} (`taskset -c {SERVER_CORE}`), the load generator (this harness, redis-benchmark) on core {LOAD_CORE}; server CPU from `/proc/PID/stat` (all its threads)."
        ),
        false => "Unpinned: the load generator shares the cores with the server.".to_owned(),
    }
}
