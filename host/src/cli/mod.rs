//! The command line: clap definitions and value parsers; the service flags
//! and their mapping to a `ServiceSpec` are in `service_args`. No I/O
//! happens here; `app` runs what the flags ask for.

mod access_args;
mod outbound_args;
mod service_args;
mod state_args;
mod tls_args;

use service_args::given_service_flags;
pub(crate) use service_args::{ServiceArgs, ServiceSource};

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use crate::net::ListenAddr;
use crate::service::MAX_DATAGRAM;
use crate::wasm::DEFAULT_KEEP_RESIDENT;

/// Serve sockets with sandboxed WebAssembly handlers.
///
/// Every accepted connection, and every received datagram, calls the
/// `handle` export of a fresh instance of the handler component (a
/// `wasmserve:handler` world component, e.g. built with the wasmserve-sdk
/// crate for wasm32-wasip2).
///
/// For each listener, one line `listening <transport> <address> handler=<name>`
/// is printed on stdout once it is bound. Logs go to stderr (filter them with
/// RUST_LOG, e.g. RUST_LOG=debug). Ctrl-C or SIGTERM stops accepting, lets
/// in-flight requests finish (see --drain-timeout), then exits 0.
///
/// Under systemd socket activation (LISTEN_PID/LISTEN_FDS), the passed
/// sockets are served as well, with the transport read from each socket.
#[derive(Debug, Parser)]
#[command(name = "wasmserve", version, about, long_about)]
#[command(args_conflicts_with_subcommands = true)]
#[command(after_help = "Examples:\n  \
    wasmserve --handler echo.wasm --tcp 8100                # TCP on 127.0.0.1:8100\n  \
    wasmserve --handler echo.wasm --tcp 0.0.0.0:8100        # all IPv4 interfaces\n  \
    wasmserve --handler echo.wasm --tcp [::]:8100           # all IPv6 interfaces\n  \
    wasmserve --handler echo.wasm --tcp 8100 --udp 8100     # TCP and UDP\n  \
    wasmserve --handler echo.wasm --unix /tmp/echo.sock     # Unix stream socket\n  \
    wasmserve --handler echo.wasm --unix-dgram /tmp/e.sock  # Unix datagram socket\n  \
    wasmserve --handler greet.wasm --tcp 0 --max-requests 1 # serve one client, exit\n  \
    wasmserve --config wasmserve.toml                       # the services of a file\n  \
    wasmserve check --config wasmserve.toml                 # validate, bind nothing")]
pub(crate) struct Cli {
    /// A subcommand; without one, wasmserve serves.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    /// What to serve: the flags of one service, or `--config`.
    #[command(flatten)]
    pub(crate) service: ServiceArgs,

    /// Settings of the whole process.
    #[command(flatten)]
    pub(crate) process: ProcessArgs,
}

/// Settings of the whole process, allowed with `--config` too.
#[derive(Debug, Clone, Args)]
pub(crate) struct ProcessArgs {
    /// KiB of each instance slot's memory kept resident between requests:
    /// the pages a request dirtied, up to this much, are reset in place for
    /// the next (faster fresh instances, fewer page faults), at the price of
    /// that memory staying resident per slot used after a burst. 0 gives
    /// all memory back to the OS when each request ends.
    #[arg(long, value_name = "KIB", default_value_t = DEFAULT_KEEP_RESIDENT / 1024, help_heading = "Limits")]
    pub(crate) keep_resident: usize,

    /// Where compiled handlers are cached, so a restart skips compiling an
    /// unchanged handler (default: systemd's $CACHE_DIRECTORY, else
    /// $XDG_CACHE_HOME/wasmserve or ~/.cache/wasmserve; a directory that
    /// cannot be written turns the cache off with one warning).
    #[arg(long, value_name = "DIR", env = "WASMSERVE_CACHE_DIR")]
    pub(crate) cache_dir: Option<PathBuf>,

    /// Serve Prometheus metrics at http://[HOST:]PORT/metrics (a bare port
    /// binds 127.0.0.1).
    #[arg(long, value_name = "[HOST:]PORT", help_heading = "Observing")]
    pub(crate) metrics: Option<ListenAddr>,

    /// Log lines as human-readable text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, help_heading = "Observing")]
    pub(crate) log_format: LogFormat,

    /// Where the access log goes — one line per request when it ends:
    /// peer, transport, handler version, duration, bytes in and out,
    /// outcome — `stderr` (with the other lines, at INFO), `off`, or a file
    /// to append to.
    #[arg(
        long,
        value_name = "stderr|off|PATH",
        default_value = "stderr",
        help_heading = "Observing"
    )]
    pub(crate) access_log: crate::app::AccessLog,

    /// Compile the handler at every start instead of using the cache
    /// (overrides --cache-dir).
    #[arg(long)]
    pub(crate) no_cache: bool,

    /// Write /tmp/perf-PID.map, naming every compiled function of the
    /// handlers (`wasm[N]::function[M]::NAME`), so `perf record -p PID` and
    /// `perf report` show where a handler's own code spends its time. For
    /// profiling: the map grows with every handler loaded and is not removed.
    #[arg(long, help_heading = "Observing")]
    pub(crate) perf_map: bool,

    /// Switch to this user (a name or uid) once every socket is bound and
    /// before any handler runs: bind ports below 1024 as root, serve as
    /// nobody. Its primary group unless --group says otherwise.
    #[arg(long, value_name = "USER", value_parser = crate::net::user, help_heading = "Privileges")]
    pub(crate) user: Option<crate::net::Account>,

    /// The group to switch to with --user (a name or gid).
    #[arg(long, value_name = "GROUP", value_parser = crate::net::group, requires = "user", help_heading = "Privileges")]
    pub(crate) group: Option<u32>,

    /// After Ctrl-C or SIGTERM, how long in-flight requests may take to
    /// finish before they are cut (e.g. 10s, 500ms, 1m). A second signal cuts
    /// them at once.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) drain_timeout: Duration,
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// `2026-11-25T04:47:58Z  INFO conn{id=1 peer=...}: message field=value`
    Text,
    /// One JSON object per line, with the span fields (`conn`, `peer`, ...).
    Json,
}

/// wasmserve's subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Validate what the same flags would serve — a config file, or a
    /// handler with its listeners and limits — without binding anything
    /// (parse, compile, world match, limits, addresses); exit non-zero
    /// listing every problem.
    Check(Box<CheckArgs>),
    /// Create a handler project (Rust, Python or JavaScript) that builds
    /// and runs with the commands this prints.
    New(crate::scaffold::NewArgs),
    /// Publish a handler component to an OCI registry, in the Wasm
    /// artifact layout wkg uses, for `--handler oci://...` (credentials from
    /// `docker login`; a registry on loopback is spoken to over HTTP).
    Push(PushArgs),
}

/// `wasmserve push FILE oci://REGISTRY/REPOSITORY:TAG`.
#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    /// The component to publish (`.wasm`).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Where: `oci://REGISTRY/REPOSITORY:TAG`, e.g. oci://ghcr.io/acme/echo:1.0.
    #[arg(value_name = "oci://REGISTRY/REPOSITORY:TAG")]
    pub(crate) reference: PathBuf,
}

/// `wasmserve check`: the same service flags as serving.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// What to check.
    #[command(flatten)]
    pub(crate) service: ServiceArgs,
}

impl Cli {
    /// Parses the process's arguments (exiting with a usage error on bad
    /// ones, as clap does) and records which service flags were given.
    pub(crate) fn parse_args() -> Self {
        let matches = Self::command().get_matches();
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
        cli.service.given = given_service_flags(&matches);
        if let (Some(Command::Check(check)), Some(("check", sub))) =
            (&mut cli.command, matches.subcommand())
        {
            check.service.given = given_service_flags(sub);
        }
        cli
    }
}

/// Exits with a usage error (code 2) and the usage line, like clap's own.
pub(crate) fn usage_error(message: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .exit()
}

pub(super) fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!(
            "expected KEY=VALUE, e.g. greeting=hello, got {text:?}"
        )),
    }
}

pub(super) fn parse_datagram_size(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|size| MAX_DATAGRAM.contains(size))
        .ok_or_else(|| {
            format!(
                "expected a size in bytes from {} to {}, got {text:?}",
                MAX_DATAGRAM.start(),
                MAX_DATAGRAM.end()
            )
        })
}

pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|err| format!("{err} (expected a duration such as 10s, 500ms or 1m)"))
}
