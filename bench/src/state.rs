//! Shared state and messaging: the real `redis-benchmark` against the
//! `kvstore` handler (embedded in-memory backend) and against
//! `redis-server` itself, in the same run; and chat fan-out, messages
//! delivered per second to 100 clients in one `chatroom`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::server::{Kind, Paths, Server, free_port, wait_until_listening};

/// The commands `redis-benchmark` runs, and the names its CSV gives them.
const TESTS: [&str; 5] = ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR"];
/// redis-benchmark runs per server and pipeline depth in a full run.
const ROUNDS: usize = 3;
/// Clients in the room for the fan-out figure, and how many of them talk.
const ROOM: usize = 100;
const TALKERS: usize = 10;

/// Both tables, or a line saying why they were not run.
pub async fn state_table(paths: &Paths, duration: Duration) -> anyhow::Result<String> {
    let mut out = String::new();
    let tools = ["redis-server", "redis-benchmark"].iter().all(|tool| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok()
    });
    if !tools || !paths.handler("kvstore").exists() {
        writeln!(
            out,
            "\n(redis-benchmark table not run: needs redis-server, redis-benchmark (Debian redis-server, redis-tools) and kvstore.wasm)"
        )?;
    } else {
        out.push_str(&redis_benchmark_table(paths, duration).await?);
    }
    if paths.handler("chatroom").exists() {
        out.push_str(&fan_out_table(paths, duration).await?);
    }
    Ok(out)
}

/// A `redis-server` on a free port, killed when dropped.
pub(crate) struct RedisServer {
    _child: Child,
    pub(crate) port: u16,
}

impl RedisServer {
    /// Starts one on a free port and waits until it accepts.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = crate::pinning::server_command("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting redis-server")?;
        wait_until_listening(port, "redis-server").await?;
        Ok(Self {
            _child: child,
            port,
        })
    }
}

/// `redis-benchmark -t ping,set,get,incr -c 50 [-P pipeline] --csv`
/// against `port`: requests per second by test name.
async fn redis_benchmark(
    port: u16,
    requests: u64,
    pipeline: u32,
) -> anyhow::Result<HashMap<String, f64>> {
    let csv = redis_benchmark_csv(port, "ping,set,get,incr", requests, pipeline).await?;
    Ok(csv
        .into_iter()
        .map(|(test, (rps, _))| (test, rps))
        .collect())
}

/// `redis-benchmark -t TESTS -c 50 --csv` against `port`: requests per
/// second and p99 latency in ms, by test name.
pub(crate) async fn redis_benchmark_csv(
    port: u16,
    tests: &str,
    requests: u64,
    pipeline: u32,
) -> anyhow::Result<HashMap<String, (f64, f64)>> {
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", tests, "-c", "50", "-r", "100000", "--csv"])
        .args(["-n", &requests.to_string(), "-P", &pipeline.to_string()])
        .output()
        .await
        .context("running redis-benchmark")?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let rates: HashMap<String, (f64, f64)> = text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line
                .split(',')
                .map(|field| field.trim_matches('"'))
                .collect();
            let name = (*fields.first()?).to_owned();
            let rps = fields.get(1)?.parse().ok()?;
            let p99 = fields
                .get(6)
                .and_then(|p99| p99.parse().ok())
                .unwrap_or(0.0);
            Some((name, (rps, p99)))
        })
        .collect();
    if rates.is_empty() {
        bail!(
            "redis-benchmark printed no figures: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(rates)
}

async fn redis_benchmark_table(paths: &Paths, duration: Duration) -> anyhow::Result<String> {
    let mut out = String::from(
        "\n| redis-benchmark -c 50 (median of 3 alternating runs) | test | redis-server req/s | kvstore on wasmserve req/s | ratio (target ≥ 0.95 without pipelining, ≥ 0.70 with -P 16) |\n|---|---|---|---|---|\n",
    );
    // About `duration` per test at redis-server's speed without pipelining.
    let requests = ((duration.as_secs_f64() * 60_000.0) as u64).max(2_000);
    let redis = RedisServer::start().await?;
    let kvstore = Server::start(paths, Kind::Wasmserve, "kvstore", "tcp", &[]).await?;
    let kv_port: u16 = kvstore
        .addr
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .context("kvstore's port")?;
    for pipeline in [1, 16] {
        let requests = requests * u64::from(pipeline.min(4));
        // Runs vary by ±10 % on this VM: in a full run, three of each,
        // alternating, and the median of each test.
        let rounds = if duration < Duration::from_secs(1) {
            1
        } else {
            ROUNDS
        };
        let (mut native, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            native.push(redis_benchmark(redis.port, requests, pipeline).await?);
            ours.push(redis_benchmark(kv_port, requests, pipeline).await?);
        }
        for test in TESTS {
            let (Some(native), Some(ours)) = (median(&native, test), median(&ours, test)) else {
                continue;
            };
            writeln!(
                out,
                "| -P {pipeline} | {test} | {native:.0} | {ours:.0} | {:.2}× |",
                ours / native
            )?;
        }
    }
    Ok(out)
}

/// The median requests/s of `test` over `runs`.
fn median(runs: &[HashMap<String, f64>], test: &str) -> Option<f64> {
    let mut rates: Vec<f64> = runs
        .iter()
        .filter_map(|run| run.get(test).copied())
        .collect();
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied()
}

/// 100 clients in one room, 10 of them sending lines as fast as the room
/// takes them: lines delivered per second over all clients, and lines lost
/// by members that fell behind.
async fn fan_out_table(paths: &Paths, duration: Duration) -> anyhow::Result<String> {
    let server = Server::start(paths, Kind::Wasmserve, "chatroom", "tcp", &[]).await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let mut members = Vec::new();
    for _ in 0..ROOM {
        let stream = TcpStream::connect(&server.addr).await?;
        let (read, write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        lines.next_line().await?; // the welcome
        members.push((lines, write));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for (index, (mut lines, mut write)) in members.into_iter().enumerate() {
        let (delivered, lost) = (Arc::clone(&delivered), Arc::clone(&lost));
        tasks.push(tokio::spawn(async move {
            let reading = async {
                while let Ok(Ok(Some(line))) =
                    tokio::time::timeout_at(deadline.into(), lines.next_line()).await
                {
                    if let Some(missed) = line.strip_prefix("* (you missed ") {
                        let n: u64 = missed
                            .split(' ')
                            .next()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        lost.fetch_add(n, Ordering::Relaxed);
                    } else if !line.starts_with("* ") {
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            };
            let talking = async {
                if index >= TALKERS {
                    return;
                }
                let batch = "the quick brown fox jumps over the lazy dog\n".repeat(16);
                // Bounded by the deadline: once the readers stop, the room
                // stops reading the talkers too.
                let deadline = tokio::time::Instant::from_std(deadline);
                while let Ok(Ok(())) =
                    tokio::time::timeout_at(deadline, write.write_all(batch.as_bytes())).await
                {
                    tokio::task::yield_now().await;
                }
            };
            tokio::join!(reading, talking);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut out = String::from(
        "\n| chat fan-out (chatroom, memory backend) | lines delivered to clients /s | lines lost by members that fell behind |\n|---|---|---|\n",
    );
    writeln!(
        out,
        "| {ROOM} clients in one room, {TALKERS} talking as fast as they can | {:.0} | {} |",
        delivered.load(Ordering::Relaxed) as f64 / seconds,
        lost.load(Ordering::Relaxed)
    )?;
    Ok(out)
}
