//! The load generator: the workloads, the clients that run them, and what
//! one run measures (throughput, latency percentiles, server CPU per op).
//!
//! Every loop is bounded by time and talks to loopback only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::server::{Kind, Paths, Server};

/// One workload: what the clients do, against which handler and transport.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Its name in the tables.
    pub name: &'static str,
    /// `echo` or `greet`: the handler (and the baselines' job).
    pub job: &'static str,
    /// `tcp`, `udp` or `unix`.
    pub transport: &'static str,
    /// Concurrent clients.
    pub clients: usize,
    /// Bytes per echo message.
    pub message: usize,
    /// Flags for wasmserve only (the baselines have no such choice).
    pub wasm_flags: &'static [&'static str],
    /// The handler's language, as its file name's suffix (`-py`: the Python
    /// `echo-py.wasm`; empty: the Rust one), for wasmserve only.
    pub variant: &'static str,
    /// The throughput ratio to the stronger plain tokio baseline asked for
    /// (issue 16).
    pub target: f64,
}

impl Workload {
    /// The same workload served by the handler in another language.
    pub fn in_language(self, variant: &'static str) -> Self {
        Self { variant, ..self }
    }

    /// The same workload with another number of clients.
    pub fn with_clients(self, clients: usize) -> Self {
        Self { clients, ..self }
    }
}

/// The workloads of the main table, each against every server.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "TCP echo, 64 conns, 64 B",
        job: "echo",
        transport: "tcp",
        clients: 64,
        message: 64,
        wasm_flags: &[],
        variant: "",
        target: 0.90,
    },
    Workload {
        name: "TCP echo, 64 conns, 4096 B",
        job: "echo",
        transport: "tcp",
        clients: 64,
        message: 4096,
        wasm_flags: &[],
        variant: "",
        target: 0.90,
    },
    Workload {
        name: "TCP echo, 1 conn, 64 B",
        job: "echo",
        transport: "tcp",
        clients: 1,
        message: 64,
        wasm_flags: &[],
        variant: "",
        target: 0.90,
    },
    Workload {
        name: "TCP echo, 16 conns, 64 B",
        job: "echo",
        transport: "tcp",
        clients: 16,
        message: 64,
        wasm_flags: &[],
        variant: "",
        target: 0.90,
    },
    Workload {
        name: "TCP echo, 256 conns, 4096 B",
        job: "echo",
        transport: "tcp",
        clients: 256,
        message: 4096,
        wasm_flags: &[],
        variant: "",
        target: 0.90,
    },
    Workload {
        name: "TCP connect-greet-close, 32 concurrent",
        job: "greet",
        transport: "tcp",
        clients: 32,
        message: 0,
        wasm_flags: &[],
        variant: "",
        target: 0.85,
    },
    Workload {
        name: "UDP echo, 16 clients, 64 B, fresh instance per datagram",
        job: "echo",
        transport: "udp",
        clients: 16,
        message: 64,
        wasm_flags: &[],
        variant: "",
        target: 0.60,
    },
    Workload {
        name: "UDP echo, 16 clients, 64 B, --reuse-datagram-instances",
        job: "echo",
        transport: "udp",
        clients: 16,
        message: 64,
        wasm_flags: &["--reuse-datagram-instances"],
        variant: "",
        target: 0.90,
    },
    Workload {
        name: "Unix stream echo, 64 conns, 64 B",
        job: "echo",
        transport: "unix",
        clients: 64,
        message: 64,
        wasm_flags: &[],
        variant: "",
        target: 0.90,
    },
];

/// The echo workload the chart sweeps over connection counts.
pub const CHART_WORKLOAD: Workload = WORKLOADS[0];

/// What one workload measured against one server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    /// Operations (echo round trips, greetings, datagrams) per second.
    pub ops_per_sec: f64,
    /// Server CPU (user + system) per operation, in microseconds.
    pub cpu_us_per_op: f64,
    /// Median latency of one operation, in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, in microseconds.
    pub p99_us: f64,
}

/// Starts `kind`, warms it up, then measures `workload` for `duration`.
pub async fn measure(
    paths: &Paths,
    kind: Kind,
    workload: Workload,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let (flags, handler) = match kind {
        Kind::Wasmserve => (
            workload.wasm_flags,
            format!("{}{}", workload.job, workload.variant),
        ),
        _ => (&[][..], workload.job.to_owned()),
    };
    let server = Server::start(paths, kind, &handler, workload.transport, flags).await?;
    // Warm-up, so that start-up work is not measured.
    drive(
        workload,
        &server.addr,
        duration.min(Duration::from_millis(300)),
    )
    .await?;
    let cpu_before = server.cpu();
    let started = Instant::now();
    let mut latencies = drive(workload, &server.addr, duration).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.cpu().saturating_sub(cpu_before);
    let ops = latencies.len().max(1) as f64;
    latencies.sort_unstable();
    Ok(Measured {
        ops_per_sec: ops / elapsed,
        cpu_us_per_op: cpu.as_secs_f64() * 1e6 / ops,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
    })
}

/// The run with the median throughput of `runs` (the lower middle one of
/// an even count).
pub fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
    runs.get(runs.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

/// The `q` quantile of sorted latencies (nanoseconds), in microseconds.
pub fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)] as f64 / 1e3
}

/// Runs `workload` against a started server for `duration`; returns the
/// latency of every operation, in nanoseconds.
pub async fn drive(workload: Workload, addr: &str, duration: Duration) -> anyhow::Result<Vec<u64>> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..workload.clients {
        let (stop, addr) = (Arc::clone(&stop), addr.to_owned());
        tasks.push(tokio::spawn(
            async move { client(workload, &addr, &stop).await },
        ));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(latencies)
}

/// One client: repeats its operation until `stop`, timing each.
async fn client(workload: Workload, addr: &str, stop: &AtomicBool) -> anyhow::Result<Vec<u64>> {
    let message = vec![b'x'; workload.message.max(1)];
    let mut reply = vec![0u8; message.len()];
    let mut latencies = Vec::new();
    match (workload.job, workload.transport) {
        ("greet", _) => {
            let mut greeting = Vec::with_capacity(64);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let mut stream = tokio::net::TcpStream::connect(addr).await?;
                greeting.clear();
                stream.read_to_end(&mut greeting).await?;
                anyhow::ensure!(greeting == b"Thank you for connecting", "bad greeting");
                latencies.push(elapsed_ns(started));
            }
        }
        ("echo", "udp") => {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(addr).await?;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                socket.send(&message).await?;
                // A lost datagram is retried rather than waited on forever.
                if let Ok(received) =
                    tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut reply)).await
                {
                    anyhow::ensure!(received? == message.len(), "short datagram");
                    latencies.push(elapsed_ns(started));
                }
            }
        }
        ("echo", "unix") => {
            let stream = tokio::net::UnixStream::connect(addr).await?;
            ping_pong(stream, &message, &mut reply, stop, &mut latencies).await?;
        }
        _ => {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            ping_pong(stream, &message, &mut reply, stop, &mut latencies).await?;
        }
    }
    Ok(latencies)
}

async fn ping_pong<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    message: &[u8],
    reply: &mut [u8],
    stop: &AtomicBool,
    latencies: &mut Vec<u64>,
) -> anyhow::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        stream.write_all(message).await?;
        stream.read_exact(reply).await?;
        anyhow::ensure!(reply == message, "echo mismatch");
        latencies.push(elapsed_ns(started));
    }
    Ok(())
}

fn elapsed_ns(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One echo exchange of a single byte on `stream`.
pub async fn exchange_byte(stream: &mut tokio::net::TcpStream, byte: u8) -> anyhow::Result<()> {
    stream.write_all(&[byte]).await?;
    let mut reply = [0u8; 1];
    stream.read_exact(&mut reply).await?;
    anyhow::ensure!(reply == [byte], "held connection stopped echoing");
    Ok(())
}
