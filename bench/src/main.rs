//! The benchmark harness: runs the same workloads against three servers in
//! one run — a plain tokio server (the ceiling), wasmserve with the bundled
//! handlers, and Python's socketserver with ThreadingMixIn (the seed's
//! baseline) — and prints Markdown tables of throughput, latency, server CPU
//! per operation and the ratios to the native server; idle-connection
//! memory; instantiation time; start-up time.
//!
//! Build and run (release builds, from the workspace root):
//!
//! ```sh
//! cargo build --release -p wasmserve -p wasmserve-bench
//! cargo build --release --target wasm32-wasip2 -p echo -p greet -p faulty
//! target/release/wasmserve-bench --write-results      # ~4 minutes
//! ```
//!
//! `--write-results` replaces the measured part of `bench/RESULTS.md` and
//! writes `bench/throughput.svg`. `--smoke` is the short run CI does to prove
//! the harness works (debug builds are fine; no figure means anything).
//!
//! Every load loop is bounded by time and talks to loopback only. Targets
//! are written next to each figure; nothing here fails on a slow machine.

mod chart;
mod contract;
mod fairness;
mod languages;
mod load;
mod pinning;
mod proxying;
mod server;
mod state;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use load::{CHART_WORKLOAD, WORKLOADS, Workload};
use server::{Kind, Paths, Server};

/// Benchmark wasmserve against plain tokio and Python socketserver.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds each workload runs against each server.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Idle connections held open for the memory measurement.
    #[arg(long, default_value_t = 15_000)]
    idle: usize,
    /// A short run proving the harness works (0.2 s per workload, 200 idle
    /// connections, no chart); CI runs it.
    #[arg(long)]
    smoke: bool,
    /// Where echo.wasm and greet.wasm are (default:
    /// target/wasm32-wasip2/release).
    #[arg(long, value_name = "DIR")]
    handlers: Option<PathBuf>,
    /// Write the figures into bench/RESULTS.md and the chart into
    /// bench/throughput.svg.
    #[arg(long, conflicts_with = "only")]
    write_results: bool,
    /// Run only the main-table workloads whose name contains TEXT (e.g.
    /// "Unix"), or only the fairness table with `fairness`, or only the
    /// contract 0.1/0.2 echo table with `contract`, or only the
    /// shared-state tables (redis-benchmark against kvstore and
    /// redis-server, chat fan-out) with `state`, or only the proxy
    /// comparison with HAProxy with `proxy`, or only the idle-connection
    /// memory table with `idle`, and nothing else: for quick comparisons
    /// while tuning.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Rounds of the main table: every server measured once per round,
    /// the rounds alternating, the median reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Let the load generator share every core with the server (the
    /// default pins each server to core 1 and the load to core 0).
    #[arg(long)]
    unpinned: bool,
    /// Drive the first main-table workload matching `--only` against a
    /// server already listening at ADDR (started by hand, e.g. under
    /// `perf record`) for `--seconds`, print its ops/s, and stop.
    #[arg(long, value_name = "ADDR", requires = "only")]
    drive: Option<String>,
}

/// How long the idle table waits after the connections close before it
/// reads RSS: long enough for the allocator to give freed memory back
/// (jemalloc's background thread, `dirty_decay_ms` in .cargo/config.toml).
const IDLE_SETTLE: Duration = Duration::from_secs(3);
/// Connection counts the chart sweeps.
const CHART_CONNECTIONS: [usize; 5] = [1, 4, 16, 64, 256];
/// Where the measured part of RESULTS.md starts and ends.
const MEASURED_START: &str = "<!-- measured: written by wasmserve-bench --write-results -->";
const MEASURED_END: &str = "<!-- end of measured -->";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.seconds = 0.2;
        args.idle = 200;
        args.rounds = 1;
    }
    let duration = Duration::from_secs_f64(args.seconds);
    pinning::pin_load_generator(args.unpinned || args.smoke)?;
    if let (Some(addr), Some(only)) = (&args.drive, &args.only) {
        let workload = WORKLOADS
            .iter()
            .find(|workload| workload.name.contains(only.as_str()))
            .with_context(|| format!("no workload's name contains {only:?}"))?;
        let started = std::time::Instant::now();
        let latencies = load::drive(*workload, addr, duration).await?;
        println!(
            "{}: {:.0} ops/s against {addr}",
            workload.name,
            latencies.len() as f64 / started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let paths = Paths::find(args.handlers.clone())?;
    // Holding thousands of connections needs as many descriptors here too.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let servers: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|kind| *kind != Kind::Python || paths.python)
        .collect();

    let mut report = String::new();
    if args.smoke {
        writeln!(
            report,
            "**Smoke run (`--smoke`): {} s per workload on debug builds, to prove the harness works. These figures are not judged; the targets beside them apply to a full release run (see bench/RESULTS.md).**\n",
            args.seconds
        )?;
    }
    writeln!(report, "{}\n", machine())?;
    writeln!(
        report,
        "`wasmserve-bench --seconds {} --rounds {}`; every server in this run, one after another, the rounds alternating; each row is a server's median round.\n",
        args.seconds, args.rounds
    )?;
    if args.only.as_deref() == Some("contract") {
        report.push_str(&contract::contract_table(&paths, duration).await?);
        print!("{report}");
        return Ok(());
    }
    if args.only.as_deref() == Some("proxy") {
        report.push_str(&proxying::proxy_table(&paths, duration).await?);
        print!("{report}");
        return Ok(());
    }
    if args.only.as_deref() == Some("state") {
        report.push_str(&state::state_table(&paths, duration).await?);
        print!("{report}");
        return Ok(());
    }
    if args.only.as_deref() == Some("languages") {
        report.push_str(&language_table(&paths, duration, args.idle.min(1000)).await?);
        report.push_str(&languages::language_speed_table(&paths, duration, args.rounds).await?);
        print!("{report}");
        return Ok(());
    }
    if args.only.as_deref() == Some("idle") {
        report.push_str(&idle_table(&paths, args.idle, IDLE_SETTLE).await?);
        print!("{report}");
        return Ok(());
    }
    if args.only.as_deref() == Some("fairness") {
        report.push_str(&fairness::fairness_table(&paths, duration).await?);
        print!("{report}");
        return Ok(());
    }
    report.push_str(
        &throughput_table(
            &paths,
            &servers,
            duration,
            args.rounds,
            args.only.as_deref(),
        )
        .await?,
    );
    if args.only.is_some() {
        print!("{report}");
        return Ok(());
    }
    // The smoke run only proves the steps work.
    let settle = match args.smoke {
        true => Duration::from_millis(300),
        false => IDLE_SETTLE,
    };
    report.push_str(&idle_table(&paths, args.idle, settle).await?);
    report.push_str(&instantiation_table(&paths, duration).await?);
    report.push_str(&contract::contract_table(&paths, duration).await?);
    report.push_str(&fairness::fairness_table(&paths, duration).await?);
    report.push_str(&state::state_table(&paths, duration).await?);
    report.push_str(&proxying::proxy_table(&paths, duration).await?);
    if !args.smoke {
        report.push_str(&language_table(&paths, duration, args.idle.min(1000)).await?);
        report.push_str(&languages::language_speed_table(&paths, duration, args.rounds).await?);
    }
    report.push_str(&startup_table(&paths).await?);
    print!("{report}");

    if !args.smoke {
        let series = chart_sweep(&paths, &servers, duration / 2).await?;
        if args.write_results {
            let svg = paths.root.join("bench/throughput.svg");
            chart::throughput_chart(
                &svg,
                "TCP echo, 64 B: throughput by connection count",
                &series,
            )?;
            println!("wrote {}", svg.display());
        }
        let mut table = String::from("\n| TCP echo 64 B, ops/s | ");
        table.push_str(&CHART_CONNECTIONS.map(|c| format!("{c} conns")).join(" | "));
        table.push_str(" |\n|---|");
        table.push_str(&"---|".repeat(CHART_CONNECTIONS.len()));
        for (name, points) in &series {
            let cells: Vec<String> = points.iter().map(|(_, ops)| format!("{ops:.0}")).collect();
            write!(table, "\n| {name} | {} |", cells.join(" | "))?;
        }
        table.push_str("\n\n![throughput by connection count](throughput.svg)\n");
        print!("{table}");
        report.push_str(&table);
    }
    if args.write_results {
        write_results(&paths, &report)?;
    }
    Ok(())
}

/// The main table: every workload against every server.
async fn throughput_table(
    paths: &Paths,
    servers: &[Kind],
    duration: Duration,
    rounds: usize,
    only: Option<&str>,
) -> anyhow::Result<String> {
    let mut out = String::from(
        "| workload | server | ops/s | ratio (target) | p50 µs | p99 µs | server CPU µs/op | CPU ratio (target ≤ 1.20) |\n|---|---|---|---|---|---|---|---|\n",
    );
    let chosen = WORKLOADS
        .iter()
        .filter(|workload| only.is_none_or(|text| workload.name.contains(text)));
    for workload in chosen {
        // Every server once per round, the rounds alternating; each
        // server's median round (by throughput) is reported.
        let mut runs: Vec<Vec<load::Measured>> = vec![Vec::new(); servers.len()];
        for _ in 0..rounds.max(1) {
            for (kind, runs) in servers.iter().zip(&mut runs) {
                let measured = load::measure(paths, *kind, *workload, duration)
                    .await
                    .with_context(|| format!("{} against {}", workload.name, kind.name()))?;
                runs.push(measured);
            }
        }
        let rows: Vec<(Kind, load::Measured)> = servers
            .iter()
            .zip(runs)
            .map(|(kind, runs)| (*kind, load::median(runs)))
            .collect();
        // The ratios are to the stronger of the two tokio baselines: the
        // ceiling wasmserve is measured against.
        let native = rows
            .iter()
            .filter(|(kind, _)| kind.is_native())
            .map(|(_, measured)| *measured)
            .max_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec))
            .unwrap_or_default();
        for (kind, measured) in rows {
            let ratio = measured.ops_per_sec / native.ops_per_sec;
            let cpu_ratio = measured.cpu_us_per_op / native.cpu_us_per_op;
            let target = match kind {
                Kind::Wasmserve => format!(" (≥ {:.2})", workload.target),
                _ => String::new(),
            };
            writeln!(
                out,
                "| {} | {} | {:.0} | {ratio:.2}×{target} | {:.0} | {:.0} | {:.1} | {cpu_ratio:.2}× |",
                workload.name,
                kind.name(),
                measured.ops_per_sec,
                measured.p50_us,
                measured.p99_us,
                measured.cpu_us_per_op,
            )?;
        }
    }
    Ok(out)
}

/// Throughput of the chart's workload at each connection count, per server.
async fn chart_sweep(
    paths: &Paths,
    servers: &[Kind],
    duration: Duration,
) -> anyhow::Result<Vec<chart::Series>> {
    let mut series = Vec::new();
    for kind in servers {
        let mut points = Vec::new();
        for conns in CHART_CONNECTIONS {
            let workload: Workload = CHART_WORKLOAD.with_clients(conns);
            let measured = load::measure(paths, *kind, workload, duration).await?;
            points.push((conns, measured.ops_per_sec));
        }
        series.push((kind.name(), points));
    }
    Ok(series)
}

/// RSS per idle connection with `count` connections held, and RSS after
/// they close.
async fn idle_table(paths: &Paths, count: usize, settle: Duration) -> anyhow::Result<String> {
    let mut out = format!(
        "\n{}\n\n| {count} idle echo connections | RSS before | RSS held | per connection (target ≤ 24 KiB) | RSS {settle:?} after close | after / before (target ≤ 1.5×) |\n|---|---|---|---|---|---|\n",
        raise_map_count(count)
    );
    let runs: [(&str, Kind, &[&str]); 3] = [
        ("plain tokio", Kind::Native, &[]),
        ("wasmserve", Kind::Wasmserve, &[]),
        (
            "wasmserve --keep-resident 0",
            Kind::Wasmserve,
            &["--keep-resident", "0"],
        ),
    ];
    for (name, kind, flags) in runs {
        match idle_rss(paths, kind, "echo", count, flags, settle).await {
            Ok(idle) => writeln!(
                out,
                "| {name} | {} KiB | {} KiB | {:.1} KiB | {} KiB | {:.2}× |",
                idle.before,
                idle.held,
                idle.per_connection(count),
                idle.after,
                idle.after as f64 / idle.before.max(1) as f64,
            )?,
            Err(err) => writeln!(out, "| {name} | not run: {err:#} | | | | |")?,
        }
    }
    Ok(out)
}

/// Memory mappings one held wasmserve connection needs (its pool slot's
/// memory, table and stack; see `host/src/wasm/engine.rs`), with room.
const MAPPINGS_PER_CONNECTION: u64 = 8;

/// Makes sure `vm.max_map_count` lets wasmserve hold `count` connections:
/// raises it when this runs as root; says what it did, or why it could not.
fn raise_map_count(count: usize) -> String {
    const PATH: &str = "/proc/sys/vm/max_map_count";
    let needed = (count as u64 * MAPPINGS_PER_CONNECTION + 16_384).next_power_of_two();
    let current: u64 = std::fs::read_to_string(PATH)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    if current >= needed {
        return format!("`vm.max_map_count` is {current} (enough for {count} connections).");
    }
    match std::fs::write(PATH, needed.to_string()) {
        Ok(()) => format!(
            "`vm.max_map_count` raised from {current} to {needed} for {count} connections (running as root)."
        ),
        Err(err) => format!(
            "`vm.max_map_count` is {current}, under the {needed} {count} connections need, and could not be raised ({err}): run as root, or `sysctl -w vm.max_map_count={needed}`."
        ),
    }
}

/// RSS figures of one idle-connection run, in KiB.
struct IdleRss {
    before: u64,
    held: u64,
    after: u64,
    /// The private part (`RssAnon`) before and while they are held.
    private_before: u64,
    private_held: u64,
}

impl IdleRss {
    /// KiB per connection held.
    fn per_connection(&self, count: usize) -> f64 {
        self.held.saturating_sub(self.before) as f64 / count.max(1) as f64
    }

    /// KiB of private memory per connection held.
    fn private_per_connection(&self, count: usize) -> f64 {
        self.private_held.saturating_sub(self.private_before) as f64 / count.max(1) as f64
    }
}

/// Holds `count` echo connections on one server; checks every one still
/// echoes; closes them.
async fn idle_rss(
    paths: &Paths,
    kind: Kind,
    echo: &str,
    count: usize,
    flags: &[&str],
    settle: Duration,
) -> anyhow::Result<IdleRss> {
    let max_connections = (count + 16).to_string();
    let mut extra = vec!["--max-connections", &max_connections];
    extra.extend_from_slice(flags);
    let server = Server::start(paths, kind, echo, "tcp", &extra).await?;
    // One exchange first, so code paths are warm before the baseline.
    let mut first = tokio::net::TcpStream::connect(&server.addr).await?;
    load::exchange_byte(&mut first, b'x').await?;
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (before, private_before) = (server.rss_kib(), server.private_kib());
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = tokio::net::TcpStream::connect(&server.addr).await?;
        load::exchange_byte(&mut stream, b'x').await?;
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (held_rss, private_held) = (server.rss_kib(), server.private_kib());
    for stream in &mut held {
        load::exchange_byte(stream, b'y').await?;
    }
    drop(held);
    tokio::time::sleep(settle).await;
    Ok(IdleRss {
        before,
        held: held_rss,
        after: server.rss_kib(),
        private_before,
        private_held,
    })
}

/// The median instantiation time, read from wasmserve's own histogram
/// after connect-greet-close by one client at a time (under concurrent load
/// the wall-clock figure would mostly measure waiting for a core).
async fn instantiation_table(paths: &Paths, duration: Duration) -> anyhow::Result<String> {
    let (p50, p99, count) = instantiation(paths, "greet", duration).await?;
    Ok(format!(
        "\n| instantiation per connection (greet, one client) | median (target ≤ 10 µs) | p99 | instances |\n|---|---|---|---|\n| wasmserve | {:.1} µs | {:.1} µs | {count} |\n",
        p50 * 1e6,
        p99 * 1e6
    ))
}

/// The median and p99 instantiation time of handler `greet` (seconds), and
/// how many instances they were read from.
async fn instantiation(
    paths: &Paths,
    greet: &str,
    duration: Duration,
) -> anyhow::Result<(f64, f64, f64)> {
    let workload = WORKLOADS
        .iter()
        .find(|workload| workload.job == "greet")
        .copied()
        .context("no greet workload")?
        .with_clients(1);
    let server = Server::start(
        paths,
        Kind::Wasmserve,
        greet,
        "tcp",
        &["--metrics", "127.0.0.1:0"],
    )
    .await?;
    load::drive(workload, &server.addr, duration).await?;
    let metrics_addr = server
        .more_listeners
        .iter()
        .find_map(|line| line.strip_prefix("listening metrics "))
        .context("no metrics listener")?;
    let scrape = scrape(metrics_addr).await?;
    let buckets = histogram_buckets(&scrape, "wasmserve_instantiation_seconds_bucket");
    let (p50, count) = quantile(&buckets, 0.5).context("no instantiation recorded")?;
    let (p99, _) = quantile(&buckets, 0.99).context("no instantiation recorded")?;
    Ok((p50, p99, count))
}

/// What a connection costs per handler language: component size,
/// instantiation time, and RSS per idle connection.
async fn language_table(paths: &Paths, duration: Duration, idle: usize) -> anyhow::Result<String> {
    let mut out = format!(
        "\n| handler language | component | instantiation median | p99 | RSS per idle connection ({idle} held) |\n|---|---|---|---|---|\n"
    );
    for (language, suffix) in [("Rust", ""), ("Python", "-py"), ("JavaScript", "-js")] {
        let (echo, greet) = (format!("echo{suffix}"), format!("greet{suffix}"));
        let size = match std::fs::metadata(paths.handler(&echo)) {
            Ok(meta) => meta.len(),
            Err(_) => {
                writeln!(
                    out,
                    "| {language} | not built (`cargo test` builds it) | | | |"
                )?;
                continue;
            }
        };
        let (p50, p99, _) = instantiation(paths, &greet, duration).await?;
        let rss = idle_rss(paths, Kind::Wasmserve, &echo, idle, &[], Duration::ZERO).await?;
        writeln!(
            out,
            "| {language} | {:.1} MB | {:.1} µs | {:.1} µs | {:.1} KiB |",
            size as f64 / 1e6,
            p50 * 1e6,
            p99 * 1e6,
            rss.per_connection(idle),
        )?;
    }
    Ok(out)
}

/// `GET /metrics` over a plain TCP connection (HTTP/1.0: the server closes
/// when done).
async fn scrape(addr: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}

/// `(upper bound, cumulative count)` of every bucket of histogram `name`.
fn histogram_buckets(scrape: &str, name: &str) -> Vec<(f64, f64)> {
    scrape
        .lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count = line.rsplit(' ').next()?.parse().ok()?;
            Some((bound, count))
        })
        .collect()
}

/// The `q` quantile of a cumulative histogram, interpolated linearly inside
/// its bucket (as Prometheus's `histogram_quantile` does), and the count.
fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<(f64, f64)> {
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some((lower.0, total));
            }
            let share = (rank - lower.1) / (count - lower.1).max(1.0);
            return Some((lower.0 + (bound - lower.0) * share, total));
        }
        lower = (bound, count);
    }
    None
}

/// Time from spawning wasmserve to the first served greeting, without and
/// with the compile cache.
async fn startup_table(paths: &Paths) -> anyhow::Result<String> {
    let cache = server::scratch("cache");
    server::remove_scratch(&cache);
    let cold = startup(paths, &cache).await?;
    let warm = startup(paths, &cache).await?;
    server::remove_scratch(&cache);
    Ok(format!(
        "\n| start-up to first served greeting | time (target ≤ 50 ms cached) |\n|---|---|\n| no compile cache | {:.1} ms |\n| compile cache warm | {:.1} ms |\n",
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3
    ))
}

async fn startup(paths: &Paths, cache: &std::path::Path) -> anyhow::Result<Duration> {
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

/// The machine and the date, for the report.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    // The machine's cores, not this (pinned) process's share of them.
    let cores = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "Measured {date} on {cores} × {model}, {memory_gib:.0} GiB, Linux {}. {}",
        kernel.trim(),
        pinning::method()
    )
}

/// Replaces the measured part of bench/RESULTS.md with `report`.
fn write_results(paths: &Paths, report: &str) -> anyhow::Result<()> {
    let path = paths.root.join("bench/RESULTS.md");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
    let (head, rest) = text
        .split_once(MEASURED_START)
        .with_context(|| format!("{path:?} has no `{MEASURED_START}` line"))?;
    let (_, tail) = rest
        .split_once(MEASURED_END)
        .with_context(|| format!("{path:?} has no `{MEASURED_END}` line"))?;
    let text = format!("{head}{MEASURED_START}\n{report}\n{MEASURED_END}{tail}");
    std::fs::write(&path, text).with_context(|| format!("writing {path:?}"))?;
    println!("wrote {}", path.display());
    Ok(())
}
