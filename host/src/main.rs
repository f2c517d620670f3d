//! The `wasmserve` binary. All logic lives in the library (`wasmserve::main`:
//! flags → logging → runtime → app).

use std::process::ExitCode;

/// jemalloc rather than the system allocator: every connection allocates
/// and frees a store and an instance, and glibc keeps what a burst of
/// connections freed (33 MiB after 2,000 connections closed, measured),
/// while jemalloc's background thread gives it back to the OS within a
/// second (`dirty_decay_ms`, set in `.cargo/config.toml`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    wasmserve::main()
}
