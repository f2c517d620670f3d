//! Redis's own test suite against kvstore: the units `unit/type/string`,
//! `unit/type/incr`, `unit/keyspace` and `unit/expire` of the Debian
//! source of the installed redis (7.0.15, where redis-server itself passes
//! 199 with these flags), run by its `runtest` (tclsh) against kvstore on
//! the memory, file and Redis backends. Each must pass at least 85 % of
//! them; `handlers/kvstore/REDIS-TESTS.md` lists the ones that fail and why.

use std::path::Path;
use std::process::Command;

use crate::fixtures::KVSTORE;
use crate::redis_server::RedisServer;
use crate::support::Server;

/// The units, as `runtest --single` names them.
const UNITS: [&str; 4] = [
    "unit/type/string",
    "unit/type/incr",
    "unit/keyspace",
    "unit/expire",
];

/// 85 % of the 199 tests redis-server 7.0.15 passes in those units.
const AT_LEAST: usize = 170;

/// Where Redis's source is (set by tests/build.rs).
const SOURCE: &str = env!("WASMSERVE_REDIS_SOURCE");

/// kvstore's flags for the suite: values up to 16 MiB (a test stores 4 MB;
/// Redis allows 512 MB) and 1 GiB of state in all.
const FLAGS: [&str; 4] = ["--kv-max-value", "16777216", "--kv-max-bytes", "1073741824"];

/// Runs the units against `server`; the names of the tests passed and of
/// those failed.
fn run_units(server: &Server, base: u16) -> (Vec<String>, Vec<String>) {
    let (mut passed, mut failed) = (Vec::new(), Vec::new());
    for unit in UNITS {
        let output = Command::new("./runtest")
            .current_dir(Path::new(SOURCE))
            .args(["--host", "127.0.0.1", "--port"])
            .arg(server.addr().port().to_string())
            .args([
                "--singledb",
                "--ignore-encoding",
                "--ignore-digest",
                "--durable",
            ])
            .args(["--tags", "-needs:debug", "--tags", "-needs:repl"])
            .args(["--tags", "-needs:config-maxmemory", "--clients", "1"])
            .args(["--baseport", &base.to_string()])
            .args(["--single", unit])
            .env("TERM", "dumb")
            .output()
            .expect("run Redis's runtest");
        let text = String::from_utf8_lossy(&output.stdout);
        for line in text.lines() {
            // Lines are `[ok]: NAME (N ms)` or `[err]: NAME in FILE`, with
            // colour codes around the word.
            let plain = without_colours(line);
            if let Some(name) = plain.strip_prefix("[ok]: ") {
                passed.push(format!("{unit}: {name}"));
            } else if let Some(name) = plain
                .strip_prefix("[err]: ")
                .or_else(|| plain.strip_prefix("[exception]: "))
            {
                failed.push(format!("{unit}: {name}"));
            }
        }
    }
    (passed, failed)
}

/// `line` without its terminal colour codes (`ESC [ ... m`).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

/// Held while a suite runs: one at a time keeps the load they add to the
/// rest of the tests (some of which time their clients) to one suite's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `base` is where `runtest` looks for a free port for its own test
/// server: apart for each backend, so that suites never race for one.
fn check_backend(backend: &str, base: u16, state: &[&str]) {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let flags: Vec<&str> = FLAGS.iter().chain(state).copied().collect();
    let server = Server::start(KVSTORE, &flags);
    let (passed, failed) = run_units(&server, base);
    assert!(
        passed.len() >= AT_LEAST,
        "{backend}: kvstore passed {} of Redis's tests (at least {AT_LEAST} wanted); failed:\n{}",
        passed.len(),
        failed.join("\n")
    );
    assert!(
        !server.log_text().contains("panicked"),
        "{backend}: {}",
        server.log_text()
    );
}

#[test]
#[cfg_attr(
    wasmserve_no_redis_suite,
    ignore = "tclsh or Redis's source not found (tests/build.rs printed why; `.ci/run` provides both)"
)]
fn kvstore_passes_redis_own_tests_on_the_memory_backend() {
    check_backend("memory", 21_111, &[]);
}

#[test]
#[cfg_attr(
    wasmserve_no_redis_suite,
    ignore = "tclsh or Redis's source not found (tests/build.rs printed why; `.ci/run` provides both)"
)]
fn kvstore_passes_redis_own_tests_on_the_file_backend() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = format!("file:{}", dir.path().join("state.redb").display());
    check_backend("file", 23_111, &["--state", &state]);
}

#[test]
#[cfg_attr(
    any(wasmserve_no_redis_suite, wasmserve_no_redis),
    ignore = "tclsh, Redis's source or redis-server not found (tests/build.rs printed why; `.ci/run` provides them)"
)]
fn kvstore_passes_redis_own_tests_on_the_redis_backend() {
    let redis = RedisServer::start();
    let state = format!("redis://127.0.0.1:{}", redis.port);
    check_backend("redis", 25_111, &["--state", &state]);
}
