//! The application: what `main` runs once the flags are parsed — serving
//! (engine, signals, metrics endpoint, supervisor, the SIGHUP loop), `check`
//! and `new`. Every service goes through the same path: flags or config
//! file → [`ServiceSpec`]s → [`service::validate`] → supervisor.

mod check;
mod field_visitor;
mod inetd;
mod log_format;
mod log_writer;
mod logging;

pub(crate) use logging::AccessLog;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::{Cli, Command, ProcessArgs, ServiceArgs, ServiceSource, usage_error};
use crate::error::one_line;
use crate::metrics::{self, Metrics};
use crate::net::{ListenSpec, systemd_fds};
use crate::server::waiting_room;
use crate::service::{self, Origin, ServiceSpec, Supervisor};
use crate::shutdown::{Shutdown, StopSignals};
use crate::wasm::{EngineLimits, MAX_WARM_INSTANCES, build_engine, fit_os_limits};

/// The `wasmserve` binary: flags, then logging, then the runtime, then the
/// subcommand or serving. Errors are printed as one `error: ...` line.
pub fn main() -> ExitCode {
    let cli = Cli::parse_args();
    if cli.service.inetd {
        inetd::detach_stdout_and_stderr();
    }
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _logs = match logging::init(cli.process.log_format, &cli.process.access_log, ansi) {
        Ok(guards) => guards,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Small replies are held and sent together when a worker idles.
        .on_thread_park(crate::wasm::send_held_on_park)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the whole cause chain, joined with ": ".
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// Runs the subcommand, or serves.
async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Check(check)) => {
            check::run(&check.service, compile_cache_dir(&cli.process)).await
        }
        Some(Command::New(new)) => {
            print!("{}", new.run()?);
            Ok(())
        }
        Some(Command::Push(push)) => {
            let reference = match crate::registry::OciRef::from_path(&push.reference) {
                Some(Ok(reference)) => reference,
                Some(Err(message)) => usage_error(&message),
                None => usage_error(&format!(
                    "{}: give the destination as oci://REGISTRY/REPOSITORY:TAG",
                    push.reference.display()
                )),
            };
            let url = crate::registry::push(&push.file, &reference)
                .await
                .map_err(anyhow::Error::msg)?;
            println!("pushed {} to {reference} ({url})", push.file.display());
            Ok(())
        }
        None => serve(cli.service, cli.process).await,
    }
}

/// The services the flags ask for, validated, and where they come from.
/// Usage errors (exit code 2) exit here.
fn wanted_services(args: &ServiceArgs) -> anyhow::Result<(Vec<ServiceSpec>, Origin)> {
    let inherited = systemd_fds()?;
    match args.source(&inherited) {
        Err(message) => usage_error(&message),
        Ok(ServiceSource::Flags(spec)) => {
            if spec.listen.is_empty() {
                usage_error(
                    "no listener: give at least one of --tcp, --udp, --unix, --unix-dgram or --listen-fd",
                );
            }
            let services = vec![*spec];
            service::validate(&services, &Origin::Flags)?;
            Ok((services, Origin::Flags))
        }
        Ok(ServiceSource::File(path)) => Ok((service::load_config(&path)?, Origin::File(path))),
    }
}

/// Loads every handler, binds every listener, prints the `listening`
/// lines, then serves until Ctrl-C or SIGTERM (or `--max-requests`) and
/// drains.
///
/// Everything that can be checked is checked before the first socket is
/// bound, so a bad handler never leaves a half-started server.
async fn serve(args: ServiceArgs, process: ProcessArgs) -> anyhow::Result<()> {
    let (services, origin) = wanted_services(&args)?;
    // A connected socket handed over (inetd, systemd Accept=yes) is one
    // connection: serve it, then exit.
    let one_connection = services
        .iter()
        .flat_map(|spec| &spec.listen)
        .any(|listen| matches!(listen, ListenSpec::Fd(fd) if crate::net::is_connection(*fd)));
    let max_requests = match one_connection {
        true => Some(1),
        false => args.max_requests,
    };
    // Each service may also keep a few idle warm instances (see
    // `--reuse-datagram-instances`), outside its connection permits.
    let max_instances = services
        .iter()
        .map(|s| s.max_connections.saturating_add(warm_slots(s)))
        .fold(0u32, u32::saturating_add);
    // Each service may also hold accepted connections waiting for a slot.
    let waiting = services
        .iter()
        .map(|s| u64::try_from(waiting_room(s.max_connections)).unwrap_or(u64::MAX))
        .fold(0u64, u64::saturating_add);
    // And each slot of a service that may connect out, its sockets.
    let outbound = services
        .iter()
        .filter(|s| !s.allow_connect.is_empty())
        .map(|s| u64::from(s.max_connections) * u64::from(s.max_outbound))
        .fold(0u64, u64::saturating_add);
    fit_os_limits(max_instances, waiting, outbound).map_err(anyhow::Error::msg)?;
    let cache = compile_cache_dir(&process);
    // Pulled handlers are cached beside the compiled ones (or in a
    // temporary folder when that cache is off).
    crate::registry::set_cache_dir(
        cache
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("wasmserve"))
            .join("oci"),
    );
    let engine = build_engine(
        EngineLimits {
            max_instances,
            keep_resident_bytes: process.keep_resident.saturating_mul(1024),
            max_memory_bytes: services
                .iter()
                .map(|s| s.limits.max_memory_bytes)
                .max()
                .unwrap_or_default(),
        },
        cache.as_deref(),
        process.perf_map,
    )
    .map_err(|err| anyhow::anyhow!("configuring the wasm engine: {}", one_line(&err)))?;
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot watch SIGHUP")?;
    let signals = StopSignals::new().context("cannot watch SIGINT and SIGTERM")?;
    let shutdown = Shutdown::new();
    let metrics = Arc::new(Metrics::new());
    let metrics_listeners = match &process.metrics {
        Some(addr) => metrics::bind(addr).await?,
        None => Vec::new(),
    };
    let mut supervisor = Supervisor::new(
        engine,
        shutdown.clone(),
        max_requests,
        process.drain_timeout,
        matches!(origin, Origin::File(_)),
        Arc::clone(&metrics),
    )
    .switching_user(
        process
            .user
            .map(|account| (account.uid, process.group.unwrap_or(account.gid))),
    );
    // The endpoint answers from now on: /readyz says "starting" until
    // every listener is bound and every handler loaded.
    let mut metrics_lines = Vec::new();
    for listener in metrics_listeners {
        let addr = listener.local_addr()?;
        metrics_lines.push((format!("listening metrics {addr}"), addr));
        tokio::spawn(metrics::serve_metrics(listener, Arc::clone(&metrics)));
    }
    let mut lines = supervisor.apply(services, &origin).await?;
    metrics.health.set_ready();
    for service in supervisor.summary() {
        tracing::info!("{service}");
    }
    for (line, addr) in metrics_lines {
        tracing::info!("metrics at http://{addr}/metrics (and /healthz, /readyz)");
        lines.push(line);
    }
    print_lines(&lines)?;

    tokio::spawn(watch_signals(signals, shutdown.clone()));
    loop {
        tokio::select! {
            _ = hangups.recv() => reload(&origin, &mut supervisor).await,
            _ = shutdown.accepting_stopped() => break,
        }
    }
    metrics.health.set_draining();
    supervisor.finish().await;
    Ok(())
}

/// Pool slots a service's idle warm instances may hold.
fn warm_slots(service: &ServiceSpec) -> u32 {
    match service.reuse_datagram_instances {
        true => u32::try_from(MAX_WARM_INSTANCES).unwrap_or(u32::MAX),
        false => 0,
    }
}

/// The compile cache directory in force, if any: `--cache-dir`, else the
/// one systemd made for the unit (`CacheDirectory=`, passed as
/// `CACHE_DIRECTORY`), else `$XDG_CACHE_HOME/wasmserve` or
/// `~/.cache/wasmserve`. A directory that cannot be written (a
/// `DynamicUser=` service has no home) turns the cache off with one
/// warning: serving never fails for want of a cache.
fn compile_cache_dir(process: &ProcessArgs) -> Option<PathBuf> {
    if process.no_cache {
        return None;
    }
    let dir = process.cache_dir.clone().or_else(|| {
        if let Some(systemd) = std::env::var_os("CACHE_DIRECTORY") {
            // systemd may pass several, colon-separated; the first is ours.
            let first = systemd.to_string_lossy().split(':').next()?.to_owned();
            return Some(PathBuf::from(first));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(base.join("wasmserve"))
    })?;
    match writable(&dir) {
        Ok(()) => Some(dir),
        Err(err) => {
            tracing::warn!(
                cache_dir = %dir.display(),
                cause = %err,
                "compile cache off: cannot write its directory (give --cache-dir, or CacheDirectory= in a systemd unit)"
            );
            None
        }
    }
}

/// Whether files can be created in `dir` (made if missing).
fn writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".wasmserve-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

fn print_lines(lines: &[String]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        writeln!(stdout, "{line}")?;
    }
    stdout.flush()
}

/// SIGHUP: re-read the config file and apply it, or reload the handler.
async fn reload(origin: &Origin, supervisor: &mut Supervisor) {
    let Origin::File(path) = origin else {
        supervisor.reload_handlers("SIGHUP").await;
        return;
    };
    match reload_config(path, origin, supervisor).await {
        Ok(lines) => {
            if let Err(err) = print_lines(&lines) {
                tracing::warn!(cause = %err, "cannot print the listening lines");
            }
            tracing::info!(config = %path.display(), "configuration reloaded");
        }
        Err(err) => tracing::error!(
            config = %path.display(),
            cause = %one_line(&err),
            "configuration reload failed; the running services are unchanged"
        ),
    }
}

async fn reload_config(
    path: &Path,
    origin: &Origin,
    supervisor: &mut Supervisor,
) -> anyhow::Result<Vec<String>> {
    let services = service::load_config(path)?;
    supervisor.apply(services, origin).await
}

/// First signal: stop accepting and drain. Second signal: cut what is left.
async fn watch_signals(mut signals: StopSignals, shutdown: Shutdown) {
    signals.recv().await;
    tracing::info!(
        "stop signal received: no longer accepting; a second signal cuts in-flight connections"
    );
    shutdown.begin_drain();
    signals.recv().await;
    tracing::warn!("second stop signal: cutting in-flight connections");
    shutdown.cut();
}
