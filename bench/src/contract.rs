//! Contract 0.2 against 0.1: the same echo workloads on wasmserve with an
//! echo built against the pinned contract 0.1.1 (`legacy`, blocking `read`
//! and `write`), the SDK's `echo` (contract 0.2, the same blocking calls),
//! and `echo_streams` (contract 0.2's `wasi:io/streams`: one
//! `blocking-splice` per chunk). The 0.2 paths must be no slower than 0.1.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::{self, Measured, Workload};
use crate::server::{Kind, Paths};

/// The handlers compared, the 0.1 baseline first: file name and label.
const HANDLERS: [(&str, &str); 3] = [
    ("legacy", "0.1.1 echo (blocking read/write)"),
    ("echo", "0.2 echo, SDK (blocking read/write)"),
    (
        "echo_streams",
        "0.2 echo, wasi:io/streams (blocking-splice)",
    ),
];

/// Runs per handler and workload in a full run (the median is reported).
const ROUNDS: usize = 3;

/// The workloads: TCP echo, 64 connections, small and page-sized messages.
const WORKLOADS: [(usize, usize); 3] = [(64, 64), (64, 4096), (1, 64)];

/// The Markdown table: ops/s, p99 and server CPU per op of each handler
/// (the median of its runs), with its ratio to the 0.1.1 echo in the same
/// run.
pub async fn contract_table(paths: &Paths, duration: Duration) -> anyhow::Result<String> {
    let mut out = String::from(
        "\n| TCP echo (median of alternating runs: 3 each in a full run) | handler | ops/s | ratio to 0.1.1 (target ≥ 1.00) | p99 µs | server CPU µs/op | CPU ratio to 0.1.1 |\n|---|---|---|---|---|---|---|\n",
    );
    if let Some((missing, _)) = HANDLERS
        .iter()
        .find(|(name, _)| !paths.handler(name).exists())
    {
        writeln!(
            out,
            "| not run: {missing}.wasm missing (`cargo build --release --target wasm32-wasip2 -p legacy -p echo -p echo-streams`) | | | | | | |"
        )?;
        return Ok(out);
    }
    // Runs of a few seconds vary by ±15 % on this VM from one to the next:
    // each handler is measured ROUNDS times, the three alternating, and
    // the median run is reported.
    let rounds = if duration < Duration::from_secs(1) {
        1
    } else {
        ROUNDS
    };
    for (clients, message) in WORKLOADS {
        let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); HANDLERS.len()];
        for _ in 0..rounds {
            for ((job, _), runs) in HANDLERS.iter().zip(&mut runs) {
                let workload = Workload {
                    name: "contract",
                    job,
                    transport: "tcp",
                    clients,
                    message,
                    wasm_flags: &[],
                    variant: "",
                    target: 1.0,
                };
                runs.push(load::measure(paths, Kind::Wasmserve, workload, duration).await?);
            }
        }
        let medians: Vec<Measured> = runs.into_iter().map(load::median).collect();
        let base = medians[0];
        for ((_, label), measured) in HANDLERS.iter().zip(&medians) {
            writeln!(
                out,
                "| {clients} conns, {message} B | {label} | {:.0} | {:.2}× | {:.0} | {:.1} | {:.2}× |",
                measured.ops_per_sec,
                measured.ops_per_sec / base.ops_per_sec,
                measured.p99_us,
                measured.cpu_us_per_op,
                measured.cpu_us_per_op / base.cpu_us_per_op,
            )?;
        }
    }
    Ok(out)
}
