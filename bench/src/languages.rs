//! A handler written in Python (or JavaScript) against the `socketserver` it
//! replaces (issue 33): connect + greet + close and echo throughput with
//! the server's CPU per operation, and the memory an idle connection holds
//! after one echo; the Rust handler beside them. Every figure is the median
//! of alternating rounds, the servers pinned like the main table.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;

use crate::load::{self, Measured, WORKLOADS, Workload};
use crate::server::{Kind, Paths};

/// The handlers compared with Python's socketserver, by file-name suffix.
const VARIANTS: [(&str, &str); 3] = [("Python", "-py"), ("JavaScript", "-js"), ("Rust", "")];

/// Idle connections held for the memory row.
const IDLE: usize = 100;

/// The main table's connect-greet-close and 64-connection echo workloads.
fn workloads() -> Vec<Workload> {
    WORKLOADS
        .iter()
        .filter(|workload| {
            workload.name.starts_with("TCP connect-greet-close")
                || workload.name == "TCP echo, 64 conns, 64 B"
        })
        .copied()
        .collect()
}

/// The table, or a line saying why it cannot be made here.
pub async fn language_speed_table(
    paths: &Paths,
    duration: Duration,
    rounds: usize,
) -> anyhow::Result<String> {
    let mut out = String::from(
        "\n| workload | server | ops/s | ratio to socketserver (target: greet ≥ 1.0, echo ≥ 0.8) | server CPU µs/op | CPU ratio |\n|---|---|---|---|---|---|\n",
    );
    if !paths.python || !paths.handler("echo-py").exists() {
        out.push_str("| not measured: needs python3 and the Python handlers (`cargo test` builds them) | | | | | |\n");
        return Ok(out);
    }
    let variants: Vec<(&str, &str)> = VARIANTS
        .into_iter()
        .filter(|(_, suffix)| paths.handler(&format!("echo{suffix}")).exists())
        .collect();
    for workload in workloads() {
        // The baseline first, then each handler; every round alternates.
        let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); variants.len() + 1];
        for _ in 0..rounds.max(1) {
            let baseline = load::measure(paths, Kind::Python, workload, duration)
                .await
                .with_context(|| format!("{} against socketserver", workload.name))?;
            runs[0].push(baseline);
            for (index, (language, suffix)) in variants.iter().enumerate() {
                let measured = load::measure(
                    paths,
                    Kind::Wasmserve,
                    workload.in_language(suffix),
                    duration,
                )
                .await
                .with_context(|| format!("{} against {language}", workload.name))?;
                runs[index + 1].push(measured);
            }
        }
        let mut medians = runs.into_iter().map(load::median);
        let baseline = medians.next().unwrap_or_default();
        let names =
            std::iter::once("Python socketserver (CPython, a thread per connection)".to_owned())
                .chain(
                    variants
                        .iter()
                        .map(|(language, _)| format!("wasmserve, {language} handler")),
                );
        for (name, measured) in names.zip(std::iter::once(baseline).chain(medians)) {
            writeln!(
                out,
                "| {} | {name} | {:.0} | {:.2}× | {:.1} | {:.2}× |",
                workload.name,
                measured.ops_per_sec,
                measured.ops_per_sec / baseline.ops_per_sec,
                measured.cpu_us_per_op,
                measured.cpu_us_per_op / baseline.cpu_us_per_op,
            )?;
        }
    }
    writeln!(
        out,
        "\n| RSS per idle connection after one echo ({IDLE} held) | KiB (target for Python ≤ 512) | of which private (`RssAnon`) |\n|---|---|---|"
    )?;
    let socketserver =
        crate::idle_rss(paths, Kind::Python, "echo", IDLE, &[], Duration::ZERO).await?;
    writeln!(
        out,
        "| Python socketserver | {:.1} | {:.1} |",
        socketserver.per_connection(IDLE),
        socketserver.private_per_connection(IDLE)
    )?;
    for (language, suffix) in &variants {
        let held = crate::idle_rss(
            paths,
            Kind::Wasmserve,
            &format!("echo{suffix}"),
            IDLE,
            &[],
            Duration::ZERO,
        )
        .await?;
        writeln!(
            out,
            "| wasmserve, {language} handler | {:.1} | {:.1} |",
            held.per_connection(IDLE),
            held.private_per_connection(IDLE)
        )?;
    }
    Ok(out)
}
