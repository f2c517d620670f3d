//! Logging: every line to stderr (text or JSON), through a bounded,
//! non-blocking writer that writes in batches (`log_writer.rs`), so a
//! burst of lines (a refused flood, the access log of a busy service) never
//! blocks a runtime worker: past a few MiB waiting, new lines are dropped
//! instead, and counted. The access log goes with the other lines, to a
//! file of its own, or nowhere (`--access-log`).

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::str::FromStr;

use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::util::SubscriberInitExt;

use super::log_format::{PlainFields, PlainLines};
use super::log_writer::{BatchedWriter, WriterGuard};
use crate::cli::LogFormat;
use crate::server::ACCESS_TARGET;

/// Where access lines go (`--access-log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccessLog {
    /// With the other log lines, on stderr (the default).
    Stderr,
    /// Nowhere.
    Off,
    /// Appended to this file.
    File(PathBuf),
}

impl FromStr for AccessLog {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "" => Err("empty: give stderr, off, or a file path".to_owned()),
            "stderr" => Ok(Self::Stderr),
            "off" => Ok(Self::Off),
            path => Ok(Self::File(PathBuf::from(path))),
        }
    }
}

/// Keeps the log writers' threads; dropping it flushes what they hold.
#[must_use = "dropping the guard stops the log writers"]
pub(crate) struct LogGuards(
    #[expect(
        dead_code,
        reason = "held only for its Drop, which flushes the writers"
    )]
    Vec<WriterGuard>,
);

type BoxedLayer<S = Registry> = Box<dyn Layer<S> + Send + Sync>;

/// A text or JSON layer writing to `writer`.
fn format_layer<S>(format: LogFormat, writer: BatchedWriter, ansi: bool) -> BoxedLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Json => layer
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text if ansi => layer.with_ansi(true).boxed(),
        // Without colours (a file, journald, a pipe: every server's case),
        // the same lines for less CPU: `log_format.rs`.
        LogFormat::Text => layer
            .with_ansi(false)
            .fmt_fields(PlainFields)
            .event_format(PlainLines)
            .boxed(),
    }
}

fn non_blocking(
    writer: impl std::io::Write + Send + 'static,
) -> Result<(BatchedWriter, WriterGuard), String> {
    BatchedWriter::start("wasmserve-log", writer)
        .map_err(|err| format!("cannot start the log writer thread: {err}"))
}

/// `RUST_LOG`'s filter (default `info`), as `EnvFilter` reads it.
fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Every line to stderr (the default): one layer, filtered globally. A
/// per-layer filter looks the span up at every enter and exit, and
/// `EnvFilter` takes a lock there too; a request's span is entered and left
/// at every wake-up of its task. Plain `target=level` directives
/// (`RUST_LOG=info,wasmserve=debug`) need only `Targets`, which does
/// neither; span and field directives keep `EnvFilter`.
fn init_stderr_only(format: LogFormat, stderr: BatchedWriter, ansi: bool) -> Result<(), String> {
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let targets = match directives.trim() {
        "" => Some(Targets::new().with_default(tracing::Level::INFO)),
        text => text.parse::<Targets>().ok(),
    };
    let installed = match targets {
        Some(targets) => tracing_subscriber::registry()
            .with(targets)
            .with(format_layer(format, stderr, ansi))
            .try_init(),
        None => tracing_subscriber::registry()
            .with(env_filter())
            .with(format_layer(format, stderr, ansi))
            .try_init(),
    };
    installed.map_err(|err| format!("cannot start logging: {err}"))
}

/// Installs the process's logging: `RUST_LOG` (default `info`) filters the
/// lines to stderr; access lines go where `access` says.
pub(crate) fn init(format: LogFormat, access: &AccessLog, ansi: bool) -> Result<LogGuards, String> {
    let (stderr, stderr_guard) = non_blocking(std::io::stderr())?;
    let mut guards = vec![stderr_guard];
    if *access == AccessLog::Stderr {
        init_stderr_only(format, stderr, ansi)?;
        return Ok(LogGuards(guards));
    }
    // Access lines go to a file or nowhere: not to stderr.
    let not_access = filter_fn(|meta| meta.target() != ACCESS_TARGET);
    let main = format_layer(format, stderr, ansi)
        .with_filter(env_filter().and(not_access))
        .boxed();
    let access_layer = match access {
        AccessLog::File(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|err| {
                    format!(
                        "--access-log {}: {err} (give a file in a folder that exists and can be written, or stderr or off)",
                        path.display()
                    )
                })?;
            let (writer, guard) = non_blocking(file)?;
            guards.push(guard);
            // Spans pass too, so that access lines carry the request's
            // span fields (peer, transport, handler version).
            let only_access = filter_fn(|meta| meta.is_span() || meta.target() == ACCESS_TARGET);
            Some(
                format_layer(format, writer, false)
                    .with_filter(only_access)
                    .boxed(),
            )
        }
        AccessLog::Stderr | AccessLog::Off => None,
    };
    let layers: Vec<BoxedLayer> = std::iter::once(main).chain(access_layer).collect();
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|err| format!("cannot start logging: {err}"))?;
    Ok(LogGuards(guards))
}
