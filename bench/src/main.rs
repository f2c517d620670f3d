//! The benchmark harness: runs the same workloads against three servers in
//! one run — a plain tokio server (the ceiling), wasmserve with the bundled
//! handlers, and Python's socketserver with ThreadingMixIn (the seed's
//! baseline) — and prints a Markdown table of throughput, server CPU per
//! operation, and the ratios to the native server.
//!
//! Build and run (release builds, from the workspace root):
//!
//! ```sh
//! cargo build --release -p wasmserve -p wasmserve-bench
//! cargo build --release --target wasm32-wasip2 -p echo -p greet
//! target/release/wasmserve-bench [SECONDS_PER_WORKLOAD]
//! ```
//!
//! Every load loop is bounded by time and talks to loopback only. Targets
//! are written next to each figure; nothing here fails on a slow machine.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The servers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Native,
    Wasmserve,
    Python,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Native, Kind::Wasmserve, Kind::Python];

    fn name(self) -> &'static str {
        match self {
            Kind::Native => "plain tokio",
            Kind::Wasmserve => "wasmserve",
            Kind::Python => "Python socketserver",
        }
    }
}

/// One workload: what the clients do, against which handler and transport.
#[derive(Debug, Clone, Copy)]
struct Workload {
    name: &'static str,
    job: &'static str,
    transport: &'static str,
    clients: usize,
    message: usize,
    /// Ratio to native the issue asks wasmserve to reach (throughput).
    target: f64,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "TCP echo, 64 conns, 64 B",
        job: "echo",
        transport: "tcp",
        clients: 64,
        message: 64,
        target: 0.90,
    },
    Workload {
        name: "TCP echo, 64 conns, 4096 B",
        job: "echo",
        transport: "tcp",
        clients: 64,
        message: 4096,
        target: 0.90,
    },
    Workload {
        name: "TCP echo, 1 conn, 64 B",
        job: "echo",
        transport: "tcp",
        clients: 1,
        message: 64,
        target: 0.90,
    },
    Workload {
        name: "TCP echo, 1 conn, 4096 B",
        job: "echo",
        transport: "tcp",
        clients: 1,
        message: 4096,
        target: 0.90,
    },
    Workload {
        name: "TCP connect-greet-close, 32 concurrent",
        job: "greet",
        transport: "tcp",
        clients: 32,
        message: 0,
        target: 0.85,
    },
    Workload {
        name: "UDP echo, 16 clients, 64 B",
        job: "echo",
        transport: "udp",
        clients: 16,
        message: 64,
        target: 0.80,
    },
    Workload {
        name: "Unix stream echo, 64 conns, 64 B",
        job: "echo",
        transport: "unix",
        clients: 64,
        message: 64,
        target: 0.90,
    },
];

/// What one workload measured against one server.
#[derive(Debug, Clone, Copy, Default)]
struct Measured {
    ops_per_sec: f64,
    /// Server CPU (user + system) per operation, in microseconds.
    cpu_us_per_op: f64,
}

struct Paths {
    wasmserve: PathBuf,
    native: PathBuf,
    python_script: PathBuf,
    handlers: PathBuf,
}

impl Paths {
    fn find() -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let bin_dir = exe.parent().context("no parent dir")?.to_owned();
        let root = bin_dir
            .ancestors()
            .find(|dir| dir.join("rust-toolchain.toml").exists())
            .context("run from inside the workspace's target directory")?
            .to_owned();
        let paths = Self {
            wasmserve: bin_dir.join("wasmserve"),
            native: bin_dir.join("native-server"),
            python_script: root.join("bench/python/socketserver_server.py"),
            handlers: root.join("target/wasm32-wasip2/release"),
        };
        for path in [
            &paths.wasmserve,
            &paths.native,
            &paths.handlers.join("echo.wasm"),
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
}

/// A server process under test.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    async fn start(
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
            Kind::Native => {
                let mut command = Command::new(&paths.native);
                command.args([job, transport, &addr]);
                command
            }
            Kind::Python => {
                let mut command = Command::new("python3");
                command
                    .arg(&paths.python_script)
                    .args([job, transport, &addr]);
                command
            }
            Kind::Wasmserve => {
                let mut command = Command::new(&paths.wasmserve);
                let handler = paths.handlers.join(format!("{job}.wasm"));
                command
                    .arg("--handler")
                    .arg(handler)
                    .arg(format!("--{transport}"))
                    .arg(&addr);
                command.args(extra);
                command
            }
        };
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if kind == Kind::Wasmserve {
            command.env("RUST_LOG", "warn");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", kind.name()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("server did not start in 60s")??
            .context("server exited before listening")?;
        let addr = line
            .split_whitespace()
            .nth(2)
            .context("bad listening line")?
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, addr })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// User + system CPU time of the server so far.
    fn cpu(&self) -> Duration {
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

    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_default()
    }
}

/// Runs `workload` against a started server for `duration`; returns ops.
async fn drive(workload: Workload, addr: &str, duration: Duration) -> anyhow::Result<u64> {
    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..workload.clients {
        let (ops, stop, addr) = (Arc::clone(&ops), Arc::clone(&stop), addr.to_owned());
        tasks.push(tokio::spawn(async move {
            client(workload, &addr, &ops, &stop).await
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    Ok(ops.load(Ordering::Relaxed))
}

async fn client(
    workload: Workload,
    addr: &str,
    ops: &AtomicU64,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let message = vec![b'x'; workload.message.max(1)];
    let mut reply = vec![0u8; message.len()];
    match (workload.job, workload.transport) {
        ("greet", _) => {
            let mut greeting = Vec::with_capacity(64);
            while !stop.load(Ordering::Relaxed) {
                let mut stream = tokio::net::TcpStream::connect(addr).await?;
                greeting.clear();
                stream.read_to_end(&mut greeting).await?;
                anyhow::ensure!(greeting == b"Thank you for connecting", "bad greeting");
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }
        ("echo", "udp") => {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(addr).await?;
            while !stop.load(Ordering::Relaxed) {
                socket.send(&message).await?;
                // A lost datagram is retried rather than waited on forever.
                if let Ok(received) =
                    tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut reply)).await
                {
                    anyhow::ensure!(received? == message.len(), "short datagram");
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        ("echo", "unix") => {
            let stream = tokio::net::UnixStream::connect(addr).await?;
            ping_pong(stream, &message, &mut reply, ops, stop).await?;
        }
        _ => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            ping_pong(stream, &message, &mut reply, ops, stop).await?;
        }
    }
    Ok(())
}

async fn ping_pong<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    message: &[u8],
    reply: &mut [u8],
    ops: &AtomicU64,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        stream.write_all(message).await?;
        stream.read_exact(reply).await?;
        anyhow::ensure!(reply == message, "echo mismatch");
        ops.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

async fn measure(
    paths: &Paths,
    kind: Kind,
    workload: Workload,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let server = Server::start(paths, kind, workload.job, workload.transport, &[]).await?;
    // Warm-up, so that start-up work is not measured.
    drive(workload, &server.addr, Duration::from_millis(300)).await?;
    let cpu_before = server.cpu();
    let started = Instant::now();
    let ops = drive(workload, &server.addr, duration).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.cpu().saturating_sub(cpu_before);
    let ops = ops.max(1) as f64;
    Ok(Measured {
        ops_per_sec: ops / elapsed,
        cpu_us_per_op: cpu.as_secs_f64() * 1e6 / ops,
    })
}

/// RSS per idle connection: hold `count` connections open on an echo server.
async fn idle_rss(paths: &Paths, kind: Kind, count: usize) -> anyhow::Result<(f64, u64, u64)> {
    let extra = ["--max-connections", "4096"];
    let server = Server::start(paths, kind, "echo", "tcp", &extra).await?;
    // One exchange first, so code paths are warm before the baseline.
    {
        let stream = tokio::net::TcpStream::connect(&server.addr).await?;
        let mut reply = [0u8; 1];
        ping_pong_once(stream, &mut reply).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib();
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = tokio::net::TcpStream::connect(&server.addr).await?;
        stream.write_all(b"x").await?;
        let mut reply = [0u8; 1];
        stream.read_exact(&mut reply).await?;
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = server.rss_kib();
    // Every held connection still echoes.
    for stream in &mut held {
        stream.write_all(b"y").await?;
        let mut reply = [0u8; 1];
        stream.read_exact(&mut reply).await?;
        anyhow::ensure!(&reply == b"y", "held connection stopped echoing");
    }
    drop(held);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.rss_kib();
    let per_conn = loaded.saturating_sub(before) as f64 / count as f64;
    Ok((per_conn, before, after))
}

async fn ping_pong_once(mut stream: tokio::net::TcpStream, reply: &mut [u8]) -> anyhow::Result<()> {
    stream.write_all(b"x").await?;
    stream.read_exact(reply).await?;
    Ok(())
}

/// Time from spawning wasmserve to the first served greeting.
async fn startup(paths: &Paths, cache: &Path, cold: bool) -> anyhow::Result<Duration> {
    if cold {
        let _ = std::fs::remove_dir_all(cache);
    }
    let started = Instant::now();
    let cache_arg = cache.display().to_string();
    let server = Server::start(
        paths,
        Kind::Wasmserve,
        "greet",
        "tcp",
        &["--cache-dir", &cache_arg],
    )
    .await?;
    let mut stream = tokio::net::TcpStream::connect(&server.addr).await?;
    let mut greeting = Vec::new();
    stream.read_to_end(&mut greeting).await?;
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5.0);
    let duration = Duration::from_secs_f64(seconds);
    let paths = Paths::find()?;

    println!(
        "| workload | plain tokio ops/s | wasmserve ops/s (ratio, target) | Python ops/s (ratio) | server CPU µs/op: tokio / wasmserve (ratio) / Python (ratio) |"
    );
    println!("|---|---|---|---|---|");
    for workload in WORKLOADS {
        let mut results = [Measured::default(); 3];
        for (slot, kind) in Kind::ALL.iter().enumerate() {
            results[slot] = measure(&paths, *kind, *workload, duration)
                .await
                .with_context(|| format!("{} against {}", workload.name, kind.name()))?;
        }
        let [native, wasm, python] = results;
        let ratio = |m: Measured| m.ops_per_sec / native.ops_per_sec;
        let cpu_ratio = |m: Measured| m.cpu_us_per_op / native.cpu_us_per_op;
        println!(
            "| {} | {:.0} | {:.0} ({:.2}×, ≥{:.2}) | {:.0} ({:.2}×) | {:.1} / {:.1} ({:.2}×) / {:.1} ({:.2}×) |",
            workload.name,
            native.ops_per_sec,
            wasm.ops_per_sec,
            ratio(wasm),
            workload.target,
            python.ops_per_sec,
            ratio(python),
            native.cpu_us_per_op,
            wasm.cpu_us_per_op,
            cpu_ratio(wasm),
            python.cpu_us_per_op,
            cpu_ratio(python),
        );
    }

    println!();
    println!("| idle connections (2,000 held) | RSS per connection | RSS before → after close |");
    println!("|---|---|---|");
    for kind in [Kind::Native, Kind::Wasmserve] {
        let (per_conn, before, after) = idle_rss(&paths, kind, 2000).await?;
        println!(
            "| {} | {per_conn:.1} KiB | {before} KiB → {after} KiB |",
            kind.name()
        );
    }

    let cache = std::env::temp_dir().join(format!("wasmserve-bench-cache-{}", std::process::id()));
    let cold = startup(&paths, &cache, true).await?;
    let warm = startup(&paths, &cache, false).await?;
    let _ = std::fs::remove_dir_all(&cache);
    println!();
    println!("| start-up to first served greeting | time (target ≤ 50 ms cached) |");
    println!("|---|---|");
    println!("| no compile cache | {:.1} ms |", cold.as_secs_f64() * 1e3);
    println!(
        "| compile cache warm | {:.1} ms |",
        warm.as_secs_f64() * 1e3
    );
    Ok(())
}
