//! TCP proxies compared: the `proxy` handler on wasmserve against HAProxy
//! in TCP mode, each in front of the same upstream, same run: the real
//! `redis-benchmark -t set,get -c 50` against redis-server directly and
//! through each proxy, and 64-connection 4 KiB echo through each.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::Child;

use crate::load::{self, WORKLOADS};
use crate::server::{
    Kind, Paths, Server, free_port, remove_scratch, scratch, wait_until_listening,
};
use crate::state::{RedisServer, redis_benchmark_csv};

/// The HAProxy configuration: TCP mode, as many threads as the server has
/// cores (one when pinned), one backend server; what an operator would
/// write for an L4 proxy.
const HAPROXY_CONFIG: &str = "global
    maxconn 4000
    nbthread THREADS
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend bench
    bind 127.0.0.1:LISTEN
    default_backend upstream
backend upstream
    server one 127.0.0.1:UPSTREAM
";

/// HAProxy in the foreground, killed when dropped.
struct Haproxy {
    _child: Child,
    port: u16,
    config: std::path::PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        remove_scratch(&self.config);
    }
}

impl Haproxy {
    async fn start(upstream: u16) -> anyhow::Result<Self> {
        let port = free_port()?;
        let config = scratch("haproxy.cfg");
        let text = HAPROXY_CONFIG
            .replace("THREADS", &crate::pinning::server_cores().to_string())
            .replace("LISTEN", &port.to_string())
            .replace("UPSTREAM", &upstream.to_string());
        std::fs::write(&config, text)?;
        let child = crate::pinning::server_command("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting haproxy")?;
        wait_until_listening(port, "haproxy").await?;
        Ok(Self {
            _child: child,
            port,
            config,
        })
    }
}

fn port_of(addr: &str) -> anyhow::Result<u16> {
    addr.rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .with_context(|| format!("no port in {addr}"))
}

/// The `proxy` handler in front of `upstream`.
async fn proxy_handler(paths: &Paths, upstream: u16) -> anyhow::Result<Server> {
    let target = format!("127.0.0.1:{upstream}");
    let upstreams = format!("upstreams={target}");
    Server::start(
        paths,
        Kind::Wasmserve,
        "proxy",
        "tcp",
        &["--set", &upstreams, "--allow-connect", &target],
    )
    .await
}

/// Both tables, or why they were not run.
pub async fn proxy_table(paths: &Paths, duration: Duration) -> anyhow::Result<String> {
    let mut out = String::new();
    let tools = ["haproxy", "redis-server", "redis-benchmark"]
        .iter()
        .all(|tool| std::process::Command::new(tool).arg("-v").output().is_ok());
    if !tools || !paths.handler("proxy").exists() {
        writeln!(
            out,
            "\n(proxy table not run: needs haproxy, redis-server, redis-benchmark (Debian haproxy, redis-server, redis-tools) and proxy.wasm)"
        )?;
        return Ok(out);
    }
    out.push_str(
        "\n| through | redis-benchmark -c 50 | req/s | ratio to HAProxy (target ≥ 1.00) | p99 ms | p99 ratio to HAProxy (target ≤ 1.20) |\n|---|---|---|---|---|---|\n",
    );
    let redis = RedisServer::start().await?;
    let haproxy = Haproxy::start(redis.port).await?;
    let proxy = proxy_handler(paths, redis.port).await?;
    let requests = ((duration.as_secs_f64() * 50_000.0) as u64).max(2_000);
    let direct = redis_benchmark_csv(redis.port, "set,get", requests, 1).await?;
    let through_haproxy = redis_benchmark_csv(haproxy.port, "set,get", requests, 1).await?;
    let through_proxy = redis_benchmark_csv(port_of(&proxy.addr)?, "set,get", requests, 1).await?;
    for test in ["SET", "GET"] {
        let Some(&(base_rps, base_p99)) = through_haproxy.get(test) else {
            continue;
        };
        for (label, figures) in [
            ("nothing (redis-server directly)", &direct),
            ("HAProxy, TCP mode", &through_haproxy),
            ("wasmserve, proxy handler", &through_proxy),
        ] {
            if let Some(&(rps, p99)) = figures.get(test) {
                writeln!(
                    out,
                    "| {label} | {test} | {rps:.0} | {:.2}× | {p99:.3} | {:.2}× |",
                    rps / base_rps,
                    p99 / base_p99.max(0.001)
                )?;
            }
        }
    }
    drop((haproxy, proxy));

    out.push_str(
        "\n| through | TCP echo, 64 conns, 4 KiB: ops/s | ratio to HAProxy (target ≥ 0.90) | p99 µs |\n|---|---|---|---|\n",
    );
    let workload = WORKLOADS
        .iter()
        .find(|workload| workload.name == "TCP echo, 64 conns, 4096 B")
        .copied()
        .context("the 4 KiB echo workload")?;
    let echo = Server::start(paths, Kind::Native, "echo", "tcp", &[]).await?;
    let echo_port = port_of(&echo.addr)?;
    let haproxy = Haproxy::start(echo_port).await?;
    let proxy = proxy_handler(paths, echo_port).await?;
    let mut base = 0.0;
    for (label, addr) in [
        ("HAProxy, TCP mode", format!("127.0.0.1:{}", haproxy.port)),
        ("wasmserve, proxy handler", proxy.addr.clone()),
        ("nothing (plain tokio echo directly)", echo.addr.clone()),
    ] {
        let started = Instant::now();
        let mut latencies = load::drive(workload, &addr, duration).await?;
        let ops = latencies.len() as f64 / started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        if base == 0.0 {
            base = ops;
        }
        writeln!(
            out,
            "| {label} | {ops:.0} | {:.2}× | {:.0} |",
            ops / base,
            load::percentile(&latencies, 0.99)
        )?;
    }
    Ok(out)
}
