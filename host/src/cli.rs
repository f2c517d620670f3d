//! The command line: flags (clap derive), listen addresses, and [`run`],
//! which validates everything, binds, prints the `listening` lines and
//! serves until a signal.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::engine::{EngineLimits, build_engine};
use crate::error::{ListenError, one_line};
use crate::handler::Handler;
use crate::listener::Listener;
use crate::server::{ServeConfig, serve};
use crate::shutdown::{self, Shutdown};

/// Serve sockets with sandboxed WebAssembly handlers.
///
/// Every accepted connection calls the `handle` export of a fresh instance of
/// the handler component (a `wasmserve:handler` world component, e.g. built
/// with the wasmserve-sdk crate for wasm32-wasip2).
///
/// For each listener, one line `listening <transport> <address> handler=<name>`
/// is printed on stdout once it is bound. Logs go to stderr (filter them with
/// RUST_LOG, e.g. RUST_LOG=debug). Ctrl-C or SIGTERM stops accepting, lets
/// in-flight connections finish (see --drain-timeout), then exits 0.
#[derive(Debug, Parser)]
#[command(name = "wasmserve", version, about, long_about)]
#[command(after_help = "Examples:\n  \
    wasmserve --handler echo.wasm --tcp 8100          # 127.0.0.1:8100\n  \
    wasmserve --handler echo.wasm --tcp 0.0.0.0:8100  # all IPv4 interfaces\n  \
    wasmserve --handler echo.wasm --tcp [::]:8100     # all IPv6 interfaces\n  \
    wasmserve --handler greet.wasm --tcp 0            # any free port")]
pub struct Cli {
    /// The handler component (.wasm) that serves every request.
    #[arg(long, value_name = "PATH")]
    pub handler: PathBuf,

    /// Serve TCP on [HOST:]PORT. A bare port binds 127.0.0.1 (loopback only);
    /// use 0.0.0.0:PORT or [::]:PORT for all interfaces, port 0 for any free
    /// port. Repeat the flag to listen on several addresses.
    #[arg(long, value_name = "[HOST:]PORT", required = true)]
    pub tcp: Vec<ListenAddr>,

    /// Connections served at once; more clients wait in the listen backlog
    /// until one ends. Also sizes the instance pool.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_connections: u32,

    /// Linear memory one handler instance may grow to, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_memory: u32,

    /// After Ctrl-C or SIGTERM, how long in-flight connections may take to
    /// finish before they are cut (e.g. 10s, 500ms, 1m). A second signal cuts
    /// them at once.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|err| format!("{err} (expected a duration such as 10s, 500ms or 1m)"))
}

/// A `[HOST:]PORT` listen address as written on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
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
            .map_err(|source| ListenError::Resolve {
                addr: self.to_string(),
                source,
            })?;
        addrs.next().ok_or_else(|| ListenError::Resolve {
            addr: self.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address found"),
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
    /// Loads the handler, binds every listener, prints the `listening` lines,
    /// then serves until Ctrl-C or SIGTERM and drains.
    ///
    /// Everything that can be checked is checked before the first socket is
    /// bound, so a bad handler never leaves a half-started server.
    pub async fn run(self) -> anyhow::Result<()> {
        let engine = build_engine(EngineLimits {
            max_instances: self.max_connections,
            max_memory_bytes: usize::try_from(self.max_memory)?.saturating_mul(1024 * 1024),
        })
        .map_err(|err| anyhow::anyhow!("configuring the wasm engine: {}", one_line(&err)))?;
        let handler = Arc::new(Handler::load(&engine, &self.handler)?);

        let mut listeners = Vec::with_capacity(self.tcp.len());
        for addr in &self.tcp {
            listeners.push(Listener::bind_tcp(addr).await?);
        }
        let mut stdout = std::io::stdout().lock();
        for listener in &listeners {
            writeln!(stdout, "listening {listener} handler={}", handler.name())?;
        }
        stdout.flush()?;
        drop(stdout);

        let shutdown = Shutdown::new();
        tokio::spawn(watch_signals(shutdown.clone()));
        let config = ServeConfig {
            max_connections: self.max_connections,
            drain_timeout: self.drain_timeout,
        };
        let report = serve(listeners, handler, config, shutdown).await;
        tracing::info!(
            in_flight = report.in_flight,
            drained = report.in_flight as u64 - report.cut,
            cut = report.cut,
            "stopped"
        );
        Ok(())
    }
}

/// First signal: stop accepting and drain. Second signal: cut what is left.
async fn watch_signals(shutdown: Shutdown) {
    shutdown::signal().await;
    tracing::info!(
        "stop signal received: no longer accepting; a second signal cuts in-flight connections"
    );
    shutdown.stop_accepting();
    shutdown::signal().await;
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
