//! One validated path from flags or config file to a running service: each
//! misconfiguration that used to start silently is refused with one line
//! naming the file, the service and the key (issue 13).

use std::net::ToSocketAddrs;
use std::process::Command;

use crate::fixtures::{ECHO, GREET};
use crate::support::{
    CACHE_DIR, Server, WASMSERVE, assert_one_line_error, assert_usage_error, write_config,
};

fn run_check(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(WASMSERVE)
        .arg("check")
        .args(args)
        .env("WASMSERVE_CACHE_DIR", CACHE_DIR)
        .output()
        .expect("run check");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Two services, `a` on `listen_a` and `b` on `listen_b`, that must be
/// refused by serving and by `check` (which prints no `ok` for `b`), each
/// naming every one of `needles`.
fn assert_clash_refused(listen_a: &str, listen_b: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!(
            "[[service]]\nname = \"a\"\nhandler = \"{ECHO}\"\nlisten = [\"{listen_a}\"]\n\n\
             [[service]]\nname = \"b\"\nhandler = \"{GREET}\"\nlisten = [\"{listen_b}\"]\n"
        ),
    );
    assert_one_line_error(&["--config", &config], needles);
    let (code, stdout, stderr) = run_check(&["--config", &config]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stdout.contains("\"b\""), "{stdout}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle} missing: {stderr}");
    }
}

#[test]
fn two_services_on_one_address_are_refused_by_serve_and_check() {
    assert_clash_refused(
        "tcp:8100",
        "tcp:127.0.0.1:8100",
        &[
            "wasmserve.toml",
            "service \"b\"",
            "tcp:127.0.0.1:8100",
            "\"a\"",
        ],
    );
}

#[test]
fn host_names_that_meet_one_address_are_refused() {
    assert_clash_refused(
        "udp:localhost:8100",
        "udp:127.0.0.1:8100",
        &["service \"b\"", "udp:127.0.0.1:8100", "udp:localhost:8100"],
    );
}

#[test]
fn config_limits_are_range_checked_like_the_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (key, value) in [
        ("max_memory_mib", "0"),
        ("max_memory_mib", "5000"),
        ("max_connections", "0"),
        ("max_cpu", "\"0s\""),
        ("idle_timeout", "\"0s\""),
    ] {
        let config = write_config(
            dir.path(),
            &format!(
                "[[service]]\nname = \"e\"\nhandler = \"{ECHO}\"\nlisten = [\"tcp:0\"]\n[service.limits]\n{key} = {value}\n"
            ),
        );
        let needles = ["wasmserve.toml", "service \"e\"", &format!("limits.{key}")];
        assert_one_line_error(&["--config", &config], &needles);
        assert_one_line_error(&["check", "--config", &config], &needles);
    }
}

#[test]
fn service_flags_beside_config_are_usage_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!("[[service]]\nname = \"e\"\nhandler = \"{ECHO}\"\nlisten = [\"tcp:0\"]\n"),
    );
    for (args, needle) in [
        (
            vec!["--max-cpu", "2s"],
            "--max-cpu cannot be used with --config",
        ),
        (vec!["--max-memory", "8"], "max_memory_mib"),
        (vec!["--set", "a=b"], "[service.settings]"),
        (vec!["--backlog", "8"], "[service.socket]"),
        (vec!["--watch"], "watch = true"),
    ] {
        let mut all = vec!["--config", config.as_str()];
        all.extend(args);
        assert_usage_error(&all, needle);
    }
    // Settings of the process are fine with a config file.
    let mut server = Server::start_with(
        &["--config", &config, "--drain-timeout", "1s", "--no-cache"],
        1,
    );
    server.stop("TERM", std::time::Duration::from_secs(10));
}

#[test]
fn a_missing_handler_hint_names_the_right_package() {
    assert_one_line_error(
        &["--handler", "greet.wasm", "--tcp", "0"],
        &["-p greet", "target/wasm32-wasip2/release/greet.wasm"],
    );
    let (_, stderr) = crate::support::run_failing(&["--handler", "gret.wasm", "--tcp", "0"]);
    assert!(
        stderr.contains("check the path") && !stderr.contains("-p "),
        "{stderr}"
    );
}

#[test]
fn check_prints_ok_only_for_a_sound_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!(
            "[[service]]\nname = \"good\"\nhandler = \"{ECHO}\"\nlisten = [\"tcp:0\"]\n\n\
             [[service]]\nname = \"half\"\nhandler = \"{ECHO}\"\nlisten = [\"unix:/nonexistent-dir/x.sock\"]\n"
        ),
    );
    let (code, stdout, stderr) = run_check(&["--config", &config]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.contains("ok: service \"good\""), "{stdout}");
    assert!(!stdout.contains("\"half\""), "{stdout}");
    assert!(stderr.contains("service \"half\""), "{stderr}");

    // check takes the same flags as serving, and the same validator.
    let (code, _, stderr) = run_check(&["--handler", ECHO, "--tcp", "0", "--max-cpu", "1ms"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--max-cpu"), "{stderr}");
    assert_usage_error(&["check"], "--handler PATH");
}

#[test]
fn localhost_binds_every_address_it_resolves_to() {
    let addrs: Vec<_> = ("localhost", 0)
        .to_socket_addrs()
        .expect("localhost resolves")
        .collect();
    let mut unique = Vec::new();
    for addr in addrs {
        if !unique.contains(&addr) {
            unique.push(addr);
        }
    }
    let server = Server::start_with(&["--handler", ECHO, "--tcp", "localhost:0"], unique.len());
    for (addr, resolved) in server.addrs.iter().zip(&unique) {
        let bound: std::net::SocketAddr = addr.parse().expect("an IP address");
        assert_eq!(bound.ip(), resolved.ip(), "{:?}", server.listening);
        let stream = std::net::TcpStream::connect(bound).expect("every address serves");
        assert_eq!(crate::support::round_trip(stream, b"hi".to_vec()), b"hi");
    }
}

#[test]
fn the_startup_summary_shows_the_bound_port() {
    let server = Server::start(ECHO, &[]);
    let port = server.addr().port();
    server.wait_for_log(&[&format!("on tcp 127.0.0.1:{port}")]);
}
