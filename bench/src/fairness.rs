//! Fairness under spinning guests: an honest client's line-echo latency on
//! wasmserve with no other load, and with [`SPINNERS`] connections whose
//! guests compute without end (each is ended by `--max-cpu`, and its client
//! reconnects at once). The `faulty` test fixture plays both parts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::load::percentile;
use crate::server::{Kind, Paths, Server};

/// Connections whose guests spin at once.
pub const SPINNERS: usize = 20;

/// The Markdown table: honest p50/p99 with none and with [`SPINNERS`]
/// spinning guests, and the ratio of the p99s.
pub async fn fairness_table(paths: &Paths, duration: Duration) -> anyhow::Result<String> {
    let mut out = String::from(
        "\n| honest line echo (faulty.wasm), one client | p50 µs | p99 µs | p99 ratio to no spinners |\n|---|---|---|---|\n",
    );
    if !paths.handler("faulty").exists() {
        out.push_str("| not run: faulty.wasm missing (`cargo build --release --target wasm32-wasip2 -p faulty`) | | | |\n");
        return Ok(out);
    }
    let quiet = honest_latencies(paths, 0, duration).await?;
    let loaded = honest_latencies(paths, SPINNERS, duration).await?;
    let (quiet_p50, quiet_p99) = (percentile(&quiet, 0.5), percentile(&quiet, 0.99));
    let (p50, p99) = (percentile(&loaded, 0.5), percentile(&loaded, 0.99));
    out.push_str(&format!(
        "| no spinning guests | {quiet_p50:.0} | {quiet_p99:.0} | 1.00× |\n| {SPINNERS} spinning guests | {p50:.0} | {p99:.0} | {:.2}× |\n",
        p99 / quiet_p99.max(1.0)
    ));
    Ok(out)
}

/// Honest exchange latencies (ns) over `duration`, with `spinners` spinning
/// guests on the same server.
async fn honest_latencies(
    paths: &Paths,
    spinners: usize,
    duration: Duration,
) -> anyhow::Result<Vec<u64>> {
    let server = Server::start(
        paths,
        Kind::Wasmserve,
        "faulty",
        "tcp",
        &["--max-cpu", "1s"],
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let spinning: Vec<_> = (0..spinners)
        .map(|_| tokio::spawn(spin(server.addr.clone(), Arc::clone(&stop))))
        .collect();
    // Let the spinners get going before measuring.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut honest = BufReader::new(tokio::net::TcpStream::connect(&server.addr).await?);
    let mut latencies = Vec::new();
    let mut line = String::new();
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let started = Instant::now();
        honest.get_mut().write_all(b"ping\n").await?;
        line.clear();
        honest.read_line(&mut line).await?;
        latencies.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        // A client that talks now and then, not a load generator.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in spinning {
        task.abort();
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// Keeps one guest spinning: asks for `spin`, waits for the server to end
/// it, and asks again, until `stop`.
async fn spin(addr: String, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if stream.write_all(b"spin\n").await.is_err() {
            continue;
        }
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    }
}
