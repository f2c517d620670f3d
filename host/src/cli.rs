//! The command line: flags (clap derive), listen addresses, and [`run`],
//! which validates everything, binds, prints the `listening` lines and
//! serves until a signal.

use std::collections::HashSet;
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};

use crate::config::{self, Service};
use crate::engine::{DEFAULT_KEEP_RESIDENT, EngineLimits, build_engine, fit_os_limits};
use crate::error::{ListenError, one_line};
use crate::handler::Handler;
use crate::inherited;
use crate::limits::ConnectionLimits;
use crate::listener::{ListenOptions, ListenSpec, MAX_UDP_PAYLOAD};
use crate::metrics::{self, Metrics};
use crate::supervisor::Supervisor;

use crate::shutdown::{Shutdown, StopSignals};

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
    wasmserve --handler greet.wasm --tcp 0 --max-requests 1 # serve one client, exit")]
pub struct Cli {
    /// A subcommand; without one, wasmserve serves.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The handler component (.wasm) that serves every request. SIGHUP
    /// reloads it from the same path.
    #[arg(long, value_name = "PATH")]
    pub handler: Option<PathBuf>,

    /// Run the services of a configuration file (several handlers, each
    /// with its listeners, limits and settings) instead of --handler.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Reload the handler whenever its file changes (new connections get
    /// the new version; connections in flight finish on the old one).
    #[arg(long)]
    pub watch: bool,

    /// A setting the handler reads through the `config` interface (e.g.
    /// --set greeting=hello). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,

    /// Serve TCP on [HOST:]PORT. A bare port binds 127.0.0.1 (loopback only);
    /// use 0.0.0.0:PORT or [::]:PORT for all interfaces, port 0 for any free
    /// port. Repeatable, like every listener flag.
    #[arg(long, value_name = "[HOST:]PORT", help_heading = "Listeners")]
    pub tcp: Vec<ListenAddr>,

    /// Serve UDP on [HOST:]PORT: each datagram is one request, and each
    /// write of the handler sends one datagram back to the sender.
    #[arg(long, value_name = "[HOST:]PORT", help_heading = "Listeners")]
    pub udp: Vec<ListenAddr>,

    /// Serve a Unix stream socket at PATH. A stale socket file is replaced;
    /// a live socket or another kind of file is refused. Removed at exit.
    #[arg(long, value_name = "PATH", help_heading = "Listeners")]
    pub unix: Vec<PathBuf>,

    /// Serve a Unix datagram socket at PATH. Replies go to the sender's
    /// bound path; an unbound sender gets no reply.
    #[arg(long = "unix-dgram", value_name = "PATH", help_heading = "Listeners")]
    pub unix_dgram: Vec<PathBuf>,

    /// Serve the already-bound socket inherited as descriptor N (what
    /// Python's socket.fromfd does); the transport is read from the socket.
    #[arg(long = "listen-fd", value_name = "N", help_heading = "Listeners")]
    pub listen_fd: Vec<i32>,

    /// Permissions of the Unix socket files, in octal (e.g. 660).
    #[arg(long, value_name = "MODE", value_parser = parse_mode, help_heading = "Socket options")]
    pub unix_mode: Option<u32>,

    /// Listen backlog: connections the kernel queues while all
    /// --max-connections are busy.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1024,
        help_heading = "Socket options"
    )]
    pub backlog: i32,

    /// Set TCP_NODELAY on accepted TCP connections (small writes go out at
    /// once).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, help_heading = "Socket options")]
    pub tcp_nodelay: bool,

    /// Set SO_REUSEADDR on TCP and UDP sockets (restart without waiting out
    /// TIME_WAIT).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, help_heading = "Socket options")]
    pub reuse_addr: bool,

    /// SO_RCVBUF of listening sockets, in bytes (default: the OS's).
    #[arg(long, value_name = "BYTES", help_heading = "Socket options")]
    pub recv_buffer: Option<usize>,

    /// The largest datagram served, in bytes; longer ones are dropped and
    /// logged.
    #[arg(long, value_name = "BYTES", default_value_t = MAX_UDP_PAYLOAD, value_parser = parse_datagram_size, help_heading = "Socket options")]
    pub max_datagram: usize,

    /// When a handler's read waits this long for a silent client, the read
    /// fails with `timed-out` (e.g. 30s; default: wait forever).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Limits")]
    pub idle_timeout: Option<Duration>,

    /// Serve datagrams (UDP, Unix datagram) with warm instances that are
    /// kept and reused, one datagram at a time each, instead of a fresh
    /// instance per datagram: several times faster, but a handler's memory
    /// and globals persist from one datagram (and sender) to the next.
    /// Stream connections always get a fresh instance.
    #[arg(long, help_heading = "Limits")]
    pub reuse_datagram_instances: bool,

    /// Requests (connections or datagrams) served at once; more clients wait
    /// in the listen backlog until one ends. Also sizes the instance pool.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=100_000), help_heading = "Limits")]
    pub max_connections: u32,

    /// KiB of each instance slot's memory kept resident between requests
    /// (zeroed in place): faster fresh instances, at the price of that much
    /// memory per slot staying resident after a burst. 0 gives all memory
    /// back to the OS when each request ends.
    #[arg(long, value_name = "KIB", default_value_t = DEFAULT_KEEP_RESIDENT / 1024, help_heading = "Limits")]
    pub keep_resident: usize,

    /// Serve N requests (connections or datagrams), wait for them to finish,
    /// then exit 0, like socketserver's handle_request().
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_requests: Option<u64>,

    /// Linear memory one handler instance may grow to, in MiB; past it the
    /// guest's allocation fails (a Rust guest then aborts: its request ends).
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096), help_heading = "Limits")]
    pub max_memory: u32,

    /// CPU time a request may use without reading from its client (guest
    /// code and the host work it causes; the count restarts at every read),
    /// e.g. 1s, 200ms. Ends guests that spin or write forever.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration, help_heading = "Limits")]
    pub max_cpu: Duration,

    /// Longest a request may last from start to end, e.g. 10m (default: no
    /// limit).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Limits")]
    pub max_lifetime: Option<Duration>,

    /// Where compiled handlers are cached, so a restart skips compiling an
    /// unchanged handler (default: $XDG_CACHE_HOME/wasmserve or
    /// ~/.cache/wasmserve).
    #[arg(long, value_name = "DIR", env = "WASMSERVE_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Serve Prometheus metrics at http://[HOST:]PORT/metrics (a bare port
    /// binds 127.0.0.1).
    #[arg(long, value_name = "[HOST:]PORT", help_heading = "Observing")]
    pub metrics: Option<ListenAddr>,

    /// Log lines as human-readable text or as one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, help_heading = "Observing")]
    pub log_format: LogFormat,

    /// Compile the handler at every start instead of using the cache
    /// (overrides --cache-dir).
    #[arg(long)]
    pub no_cache: bool,

    /// After Ctrl-C or SIGTERM, how long in-flight requests may take to
    /// finish before they are cut (e.g. 10s, 500ms, 1m). A second signal cuts
    /// them at once.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

/// Pool slots a service's idle warm instances may hold.
fn warm_slots(service: &Service) -> u32 {
    match service.reuse_datagram_instances {
        true => u32::try_from(crate::handler::MAX_WARM_INSTANCES).unwrap_or(u32::MAX),
        false => 0,
    }
}

/// How log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-25T04:47:58Z  INFO conn{id=1 peer=...}: message field=value`
    Text,
    /// One JSON object per line, with the span fields (`conn`, `peer`, ...).
    Json,
}

/// wasmserve's subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate a config file or a handler (parse, compile, world match,
    /// addresses) without binding anything; exit non-zero listing every
    /// problem.
    Check(CheckArgs),
    /// Create a handler project (Rust, Python or JavaScript) that builds
    /// and runs with the commands this prints.
    New(crate::scaffold::NewArgs),
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!(
            "expected KEY=VALUE, e.g. greeting=hello, got {text:?}"
        )),
    }
}

fn parse_datagram_size(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .ok()
        .filter(|size| (1..=65_536).contains(size))
        .ok_or_else(|| format!("expected a size in bytes from 1 to 65536, got {text:?}"))
}

fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| format!("expected an octal mode such as 660 or 0o600, got {text:?}"))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|err| format!("{err} (expected a duration such as 10s, 500ms or 1m)"))
}

/// A `[HOST:]PORT` listen address as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenAddr {
    /// The host part, without IPv6 brackets; `None` for a bare port.
    host: Option<String>,
    /// The port; 0 asks the OS for a free one.
    port: u16,
}

impl ListenAddr {
    /// The host a bare port binds to: loopback, so nothing is exposed by
    /// accident.
    pub const DEFAULT_HOST: &'static str = "127.0.0.1";

    /// Resolves the address (host names such as `localhost` included) and
    /// returns the first socket address it names.
    pub async fn resolve(&self) -> Result<SocketAddr, ListenError> {
        let host = self.host.as_deref().unwrap_or(Self::DEFAULT_HOST);
        let mut addrs = tokio::net::lookup_host((host, self.port))
            .await
            .map_err(|cause| ListenError::Resolve {
                addr: self.to_string(),
                cause,
            })?;
        addrs.next().ok_or_else(|| ListenError::Resolve {
            addr: self.to_string(),
            cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"),
        })
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid =
            || format!("expected [HOST:]PORT, e.g. 8100, 0.0.0.0:8100 or [::1]:8100, got {text:?}");
        let parse_port = |port: &str| port.parse::<u16>().map_err(|_| invalid());
        if !text.contains(':') {
            return Ok(Self {
                host: None,
                port: parse_port(text)?,
            });
        }
        let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
        let host = match host.strip_prefix('[') {
            Some(bracketed) => bracketed.strip_suffix(']').ok_or_else(invalid)?,
            // An unbracketed IPv6 address ("::1:8100") is ambiguous.
            None if host.contains(':') => return Err(invalid()),
            None => host,
        };
        if host.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            host: Some(host.to_owned()),
            port: parse_port(port)?,
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            None => write!(f, "{}:{}", Self::DEFAULT_HOST, self.port),
            Some(host) if host.contains(':') => write!(f, "[{host}]:{}", self.port),
            Some(host) => write!(f, "{host}:{}", self.port),
        }
    }
}

impl Cli {
    /// Everything to listen on, in flag order (TCP, UDP, Unix, Unix
    /// datagram, inherited descriptors), plus sockets passed by systemd.
    pub fn listen_specs(&self) -> Result<Vec<ListenSpec>, ListenError> {
        let mut specs: Vec<ListenSpec> = Vec::new();
        specs.extend(self.tcp.iter().cloned().map(ListenSpec::Tcp));
        specs.extend(self.udp.iter().cloned().map(ListenSpec::Udp));
        specs.extend(self.unix.iter().cloned().map(ListenSpec::Unix));
        specs.extend(
            self.unix_dgram
                .iter()
                .cloned()
                .map(ListenSpec::UnixDatagram),
        );
        let mut fds = self.listen_fd.clone();
        fds.extend(inherited::systemd_fds()?);
        let mut seen = HashSet::new();
        for fd in fds {
            if !seen.insert(fd) {
                return Err(ListenError::Inherited {
                    fd,
                    reason: "given more than once".to_owned(),
                });
            }
            specs.push(ListenSpec::Fd(fd));
        }
        Ok(specs)
    }

    /// The compile cache directory in force, if any.
    pub fn compile_cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache"))
                })?;
            Some(base.join("wasmserve"))
        })
    }

    /// The socket settings the flags ask for.
    pub fn listen_options(&self) -> ListenOptions {
        ListenOptions {
            backlog: self.backlog,
            tcp_nodelay: self.tcp_nodelay,
            reuse_addr: self.reuse_addr,
            recv_buffer: self.recv_buffer,
            max_datagram: self.max_datagram,
            idle_timeout: self.idle_timeout,
            unix_mode: self.unix_mode,
        }
    }

    /// The services to run: the one the flags describe, or those of
    /// `--config`.
    pub fn services(&self) -> anyhow::Result<Vec<Service>> {
        let listener_flags = !(self.tcp.is_empty()
            && self.udp.is_empty()
            && self.unix.is_empty()
            && self.unix_dgram.is_empty()
            && self.listen_fd.is_empty());
        match (&self.config, &self.handler) {
            (Some(_), Some(_)) => usage_error("give either --config or --handler, not both"),
            (Some(_), None) if listener_flags => usage_error(
                "listeners come from the config file's `listen` lists when --config is given",
            ),
            (Some(path), None) => Ok(config::load(path)?),
            (None, None) => usage_error("give --handler PATH (or --config FILE)"),
            (None, Some(handler)) => {
                let listen = self.listen_specs()?;
                if listen.is_empty() {
                    usage_error(
                        "no listener: give at least one of --tcp, --udp, --unix, --unix-dgram or --listen-fd",
                    )?;
                }
                let name = handler
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_else(|| handler.display().to_string());
                Ok(vec![Service {
                    name,
                    handler: handler.clone(),
                    listen,
                    listen_options: self.listen_options(),
                    max_connections: self.max_connections,
                    limits: ConnectionLimits {
                        max_memory_bytes: usize::try_from(self.max_memory)?
                            .saturating_mul(1024 * 1024),
                        max_cpu: self.max_cpu,
                        max_lifetime: self.max_lifetime,
                    },
                    settings: self.settings.iter().cloned().collect(),
                    watch: self.watch,
                    reuse_datagram_instances: self.reuse_datagram_instances,
                }])
            }
        }
    }

    /// Runs the subcommand, or serves.
    pub async fn run(self) -> anyhow::Result<()> {
        match &self.command {
            Some(Command::Check(check)) => check.run().await,
            Some(Command::New(new)) => {
                print!("{}", new.run()?);
                Ok(())
            }
            None => self.serve().await,
        }
    }

    /// Loads every handler, binds every listener, prints the `listening`
    /// lines, then serves until Ctrl-C or SIGTERM (or `--max-requests`) and
    /// drains.
    ///
    /// Everything that can be checked is checked before the first socket is
    /// bound, so a bad handler never leaves a half-started server.
    async fn serve(self) -> anyhow::Result<()> {
        let services = self.services()?;
        if self.config.is_some() && self.max_requests.is_some() {
            usage_error("--max-requests applies to --handler, not to --config")?;
        }
        // Each service may also keep a few idle warm instances (see
        // `--reuse-datagram-instances`), outside its connection permits.
        let max_instances = services
            .iter()
            .map(|s| s.max_connections.saturating_add(warm_slots(s)))
            .sum();
        fit_os_limits(max_instances).map_err(anyhow::Error::msg)?;
        let engine = build_engine(
            EngineLimits {
                max_instances,
                keep_resident_bytes: self.keep_resident.saturating_mul(1024),
                max_memory_bytes: services
                    .iter()
                    .map(|s| s.limits.max_memory_bytes)
                    .max()
                    .unwrap_or_default(),
            },
            self.compile_cache_dir().as_deref(),
        )
        .map_err(|err| anyhow::anyhow!("configuring the wasm engine: {}", one_line(&err)))?;
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot watch SIGHUP")?;
        let signals = StopSignals::new().context("cannot watch SIGINT and SIGTERM")?;
        let shutdown = Shutdown::new();
        let metrics = Arc::new(Metrics::new());
        let metrics_listener = match &self.metrics {
            Some(addr) => Some(metrics::bind(addr).await?),
            None => None,
        };
        let summary: Vec<String> = services.iter().map(describe_service).collect();
        let mut supervisor = Supervisor::new(
            engine,
            shutdown.clone(),
            self.max_requests,
            self.drain_timeout,
            self.config.is_some(),
            Arc::clone(&metrics),
        );
        let mut lines = supervisor.apply(services).await?;
        for service in summary {
            tracing::info!("{service}");
        }
        if let Some(listener) = metrics_listener {
            let addr = listener.local_addr()?;
            tracing::info!("metrics at http://{addr}/metrics");
            lines.push(format!("listening metrics {addr}"));
            tokio::spawn(metrics::serve_metrics(listener, metrics));
        }
        let mut stdout = std::io::stdout().lock();
        for line in lines {
            writeln!(stdout, "{line}")?;
        }
        stdout.flush()?;
        drop(stdout);

        tokio::spawn(watch_signals(signals, shutdown.clone()));
        loop {
            tokio::select! {
                _ = hangups.recv() => self.reload(&mut supervisor).await,
                _ = shutdown.accepting_stopped() => break,
            }
        }
        supervisor.finish().await;
        Ok(())
    }

    /// SIGHUP: re-read the config file and apply it, or reload the handler.
    async fn reload(&self, supervisor: &mut Supervisor) {
        let Some(path) = &self.config else {
            supervisor.reload_handlers("SIGHUP").await;
            return;
        };
        let applied = match config::load(path) {
            Ok(services) => supervisor.apply(services).await,
            Err(err) => Err(err.into()),
        };
        match applied {
            Ok(lines) => {
                let mut stdout = std::io::stdout().lock();
                for line in lines {
                    let _ = writeln!(stdout, "{line}");
                }
                let _ = stdout.flush();
                tracing::info!(config = %path.display(), "configuration reloaded");
            }
            Err(err) => tracing::error!(
                config = %path.display(),
                cause = %one_line(&err),
                "configuration reload failed; the running services are unchanged"
            ),
        }
    }
}

/// One line of the startup summary: a service, its listeners and limits.
fn describe_service(service: &Service) -> String {
    let listen: Vec<String> = service.listen.iter().map(describe_listen).collect();
    let limits = &service.limits;
    format!(
        "service {:?}: handler {} on {}; limits: max-connections={} max-memory={}MiB max-cpu={:?} max-lifetime={} idle-timeout={}",
        service.name,
        service.handler.display(),
        listen.join(", "),
        service.max_connections,
        limits.max_memory_bytes / (1024 * 1024),
        limits.max_cpu,
        limits
            .max_lifetime
            .map_or("none".to_owned(), |d| format!("{d:?}")),
        service
            .listen_options
            .idle_timeout
            .map_or("none".to_owned(), |d| format!("{d:?}")),
    )
}

fn describe_listen(spec: &ListenSpec) -> String {
    match spec {
        ListenSpec::Tcp(addr) => format!("tcp:{addr}"),
        ListenSpec::Udp(addr) => format!("udp:{addr}"),
        ListenSpec::Unix(path) => format!("unix:{}", path.display()),
        ListenSpec::UnixDatagram(path) => format!("unix-dgram:{}", path.display()),
        ListenSpec::Fd(fd) => format!("fd:{fd}"),
    }
}

/// Exits with a usage error (code 2), like clap's own.
fn usage_error<T>(message: &str) -> anyhow::Result<T> {
    Cli::command()
        .error(clap::error::ErrorKind::MissingRequiredArgument, message)
        .exit()
}

/// `wasmserve check`: validate without binding anything.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The configuration file to check.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "handler",
        required_unless_present = "handler"
    )]
    pub config: Option<PathBuf>,

    /// A handler component to check.
    #[arg(long, value_name = "PATH")]
    pub handler: Option<PathBuf>,
}

impl CheckArgs {
    /// Parses the config, compiles every handler, checks its world, resolves
    /// every address; prints each problem and fails if there is any.
    pub async fn run(&self) -> anyhow::Result<()> {
        let services = match (&self.config, &self.handler) {
            (Some(path), _) => config::load(path)?,
            (None, Some(handler)) => vec![Service {
                name: handler.display().to_string(),
                handler: handler.clone(),
                listen: Vec::new(),
                listen_options: ListenOptions::default(),
                max_connections: 1,
                limits: ConnectionLimits::default(),
                settings: Default::default(),
                watch: false,
                reuse_datagram_instances: false,
            }],
            (None, None) => usage_error("give --config FILE or --handler PATH")?,
        };
        let engine = build_engine(EngineLimits::default(), None)
            .map_err(|err| anyhow::anyhow!("configuring the wasm engine: {}", one_line(&err)))?;
        let mut problems = Vec::new();
        for service in &services {
            match Handler::load(&engine, &service.handler, Arc::default()) {
                Ok(handler) => println!(
                    "ok: service {:?}: handler {} (version {})",
                    service.name,
                    service.handler.display(),
                    handler.hash()
                ),
                Err(err) => problems.push(format!("service {:?}: {err}", service.name)),
            }
            for spec in &service.listen {
                if let Err(problem) = check_listen(spec).await {
                    problems.push(format!("service {:?}: {problem}", service.name));
                }
            }
        }
        for problem in &problems {
            eprintln!("error: {problem}");
        }
        match problems.len() {
            0 => Ok(()),
            n => anyhow::bail!("{n} problem(s) found"),
        }
    }
}

/// Checks a listen address without binding it.
async fn check_listen(spec: &ListenSpec) -> Result<(), String> {
    match spec {
        ListenSpec::Tcp(addr) | ListenSpec::Udp(addr) => addr
            .resolve()
            .await
            .map(drop)
            .map_err(|err| err.to_string()),
        ListenSpec::Unix(path) | ListenSpec::UnixDatagram(path) => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(format!(
                "cannot listen on {}: directory {} does not exist",
                path.display(),
                dir.display()
            )),
            _ => Ok(()),
        },
        ListenSpec::Fd(_) => Ok(()),
    }
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

#[cfg(test)]
mod tests {
    use super::ListenAddr;

    fn parse(text: &str) -> Result<String, String> {
        text.parse::<ListenAddr>().map(|addr| addr.to_string())
    }

    #[test]
    fn bare_port_binds_loopback() {
        assert_eq!(parse("8100").as_deref(), Ok("127.0.0.1:8100"));
        assert_eq!(parse("0").as_deref(), Ok("127.0.0.1:0"));
    }

    #[test]
    fn host_and_port() {
        assert_eq!(parse("0.0.0.0:8100").as_deref(), Ok("0.0.0.0:8100"));
        assert_eq!(parse("localhost:80").as_deref(), Ok("localhost:80"));
        assert_eq!(parse("[::1]:8100").as_deref(), Ok("[::1]:8100"));
        assert_eq!(parse("[::]:0").as_deref(), Ok("[::]:0"));
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "abc",
            "70000",
            "-1",
            ":8100",
            "host:",
            "::1:8100",
            "[::1:8100",
            "1.2.3.4:x",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("expected [HOST:]PORT"), "{bad}: {err}");
        }
    }
}
