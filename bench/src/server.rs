//! The server processes under test: where their binaries are, how each is
//! started, and what the harness reads of them from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// The servers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `bench/src/bin/native_server.rs`: the same jobs in plain tokio, no Wasm,
    /// on one multi-thread runtime (what wasmserve is).
    Native,
    /// The same server with `--sharded`: a current-thread runtime per core,
    /// each with its own `SO_REUSEPORT` listener.
    NativeSharded,
    /// The release `wasmserve` binary with the bundled handlers.
    Wasmserve,
    /// `bench/python/socketserver_server.py` (ThreadingMixIn).
    Python,
}

impl Kind {
    /// Every server, the baseline first.
    pub const ALL: [Kind; 4] = [
        Kind::Native,
        Kind::NativeSharded,
        Kind::Wasmserve,
        Kind::Python,
    ];

    /// Whether this is one of the plain tokio baselines.
    pub fn is_native(self) -> bool {
        matches!(self, Kind::Native | Kind::NativeSharded)
    }

    /// The server's name in tables and the chart.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Native => "plain tokio",
            Kind::NativeSharded => "plain tokio, sharded",
            Kind::Wasmserve => "wasmserve",
            Kind::Python => "Python socketserver",
        }
    }
}

/// Where the binaries, the Python script and the handlers are.
#[derive(Debug)]
pub struct Paths {
    /// The workspace root.
    pub root: PathBuf,
    wasmserve: PathBuf,
    native: PathBuf,
    python_script: PathBuf,
    /// Whether `python3` runs here; without it the Python column is skipped.
    pub python: bool,
    handlers: PathBuf,
    /// Where the tests' build put the Python and JavaScript handlers.
    languages: PathBuf,
}

impl Paths {
    /// Finds everything next to this executable (in `target/release` or
    /// `target/debug`); handlers come from `handlers`, or
    /// `target/wasm32-wasip2/release`.
    pub fn find(handlers: Option<PathBuf>) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let bin_dir = exe.parent().context("no parent dir")?.to_owned();
        let root = bin_dir
            .ancestors()
            .find(|dir| dir.join("rust-toolchain.toml").exists())
            .context("run from inside the workspace's target directory")?
            .to_owned();
        let python = std::process::Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        let paths = Self {
            wasmserve: bin_dir.join("wasmserve"),
            native: bin_dir.join("native-server"),
            python_script: root.join("bench/python/socketserver_server.py"),
            python,
            handlers: handlers.unwrap_or_else(|| root.join("target/wasm32-wasip2/release")),
            languages: root.join("target/fixtures/languages"),
            root,
        };
        for path in [
            &paths.wasmserve,
            &paths.native,
            &paths.handler("echo"),
            &paths.handler("greet"),
        ] {
            if !path.exists() {
                bail!(
                    "{} is missing: build it first (see bench/src/main.rs)",
                    path.display()
                );
            }
        }
        Ok(paths)
    }

    /// The compiled handler `name`: `echo` is the Rust one; `echo-py` and
    /// `echo-js` are the Python and JavaScript ones that `cargo test` builds.
    pub fn handler(&self, name: &str) -> PathBuf {
        let dir = match name.contains('-') {
            true => &self.languages,
            false => &self.handlers,
        };
        dir.join(format!("{name}.wasm"))
    }
}

/// A server process under test, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where its stderr goes (removed when it stops).
    log_path: PathBuf,
    /// The address of its (first) listener.
    pub addr: String,
    /// Every further `listening` line (e.g. `listening metrics ADDR`).
    pub more_listeners: Vec<String>,
}

/// Numbers the servers' log files within this run.
static NEXT_LOG: AtomicUsize = AtomicUsize::new(0);

/// How many of a server's last stderr lines are kept, for error messages.
const STDERR_KEPT: usize = 5;

impl Server {
    /// Starts `kind` serving `job` on `transport`, with `extra` flags for
    /// wasmserve, and waits for its `listening` line(s).
    pub async fn start(
        paths: &Paths,
        kind: Kind,
        job: &str,
        transport: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let addr = match transport {
            "unix" => format!("/tmp/wasmserve-bench-{}.sock", std::process::id()),
            _ => "127.0.0.1:0".to_owned(),
        };
        let mut command = match kind {
            Kind::Native | Kind::NativeSharded => {
                let mut command = crate::pinning::server_command(&paths.native);
                command.args([job, transport, &addr]);
                if kind == Kind::NativeSharded {
                    command.arg("--sharded");
                }
                command
            }
            Kind::Python => {
                let mut command = crate::pinning::server_command("python3");
                command
                    .arg(&paths.python_script)
                    .args([job, transport, &addr]);
                command
            }
            Kind::Wasmserve => {
                let mut command = crate::pinning::server_command(&paths.wasmserve);
                command
                    .arg("--handler")
                    .arg(paths.handler(job))
                    .arg(format!("--{transport}"))
                    .arg(&addr)
                    // The load generator is one source (127.0.0.1) with
                    // up to 15,000 connections: lift the per-source cap.
                    .args(["--max-connections-per-source", "100000"])
                    .args(extra);
                command
            }
        };
        // Its log goes to a file (the access log of a datagram server is a
        // line per datagram: a pipe would make this process read them on
        // the load generator's core); its last lines explain a failed start.
        let log_path = scratch(&format!(
            "server-{}.log",
            NEXT_LOG.fetch_add(1, Ordering::Relaxed)
        ));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", kind.name()))?;

        let expected = 1 + extra.iter().filter(|flag| **flag == "--metrics").count();
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut listening = Vec::new();
        while listening.len() < expected {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .context("server did not start in 60s")??;
            match line {
                Some(line) => listening.push(line),
                None => {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let lines: Vec<&str> = log.lines().collect();
                    let said = lines[lines.len().saturating_sub(STDERR_KEPT)..].join(" / ");
                    bail!("{} exited before listening: {said}", kind.name());
                }
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr = listening[0]
            .split_whitespace()
            .nth(2)
            .context("bad listening line")?
            .to_owned();
        Ok(Self {
            child,
            log_path,
            addr,
            more_listeners: listening.split_off(1),
        })
    }

    /// Its process ID.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// User + system CPU time of the server so far.
    pub fn cpu(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which may hold spaces).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
            .sum();
        Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
    }

    /// Resident set size, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The resident memory private to the process (`RssAnon`: heap, stacks,
    /// copy-on-write copies), in KiB — without the pages of files and
    /// shared memory it maps (a handler's memory image, mapped into every
    /// instance's slot and counted in the RSS once per slot, is one copy).
    pub fn private_kib(&self) -> u64 {
        self.status_kib("RssAnon:")
    }

    /// A `/proc/PID/status` line's figure in KiB (0 if unreadable).
    fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// A scratch Unix socket path or cache directory under the system's temp dir.
/// A port free on 127.0.0.1 now, for a server that takes its port as a
/// flag (redis-server, haproxy).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits (at most 10 s) until something accepts on 127.0.0.1:`port`.
pub async fn wait_until_listening(port: u16, what: &str) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if std::time::Instant::now() > deadline {
            bail!("{what} did not start");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

pub fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wasmserve-bench-{name}-{}", std::process::id()))
}

/// Removes a scratch directory, ignoring a missing one.
pub fn remove_scratch(path: &Path) {
    let _ = std::fs::remove_dir_all(path);
}
