//! The `wasmserve` binary: parse flags, set up logging, run. All logic lives
//! in the library (see `wasmserve::cli::Cli::run`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wasmserve::cli::LogFormat;

/// jemalloc rather than the system allocator: every connection allocates
/// and frees a store and an instance, and glibc keeps what a burst of
/// connections freed (33 MiB after 2,000 connections closed, measured),
/// while jemalloc's background thread gives it back to the OS within a
/// second (`dirty_decay_ms`, set in `.cargo/config.toml`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = wasmserve::cli::Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => logs
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the whole cause chain, joined with ": ".
            eprintln!("error: {}", wasmserve::error::one_line(&err));
            ExitCode::FAILURE
        }
    }
}
