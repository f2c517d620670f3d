//! The configuration file (several services in one process) and `check`.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::Command;

use crate::fixtures::{ECHO, WHOAMI};
use crate::support::{
    CACHE_DIR, Server, WASMSERVE, assert_one_line_error, assert_usage_error, round_trip,
};

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("wasmserve.toml");
    std::fs::write(&path, text).expect("write config");
    path.to_str().expect("utf-8").to_owned()
}

#[test]
fn two_services_on_different_transports_from_one_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("who.sock");
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[[service]]
name = "echo"
handler = "{ECHO}"
listen = ["tcp:0"]

[[service]]
name = "who"
handler = "{WHOAMI}"
listen = ["unix:{}"]
[service.limits]
max_connections = 4
"#,
            socket.display()
        ),
    );
    let server = Server::start_with(&["--config", &config], 2);
    assert!(
        server.listening[0].ends_with("handler=echo.wasm service=echo"),
        "{}",
        server.listening[0]
    );
    assert!(
        server.listening[1].ends_with("handler=whoami.wasm service=who"),
        "{}",
        server.listening[1]
    );
    assert_eq!(
        round_trip(server.connect(), b"one file".to_vec()),
        b"one file"
    );
    let mut reply = String::new();
    UnixStream::connect(&socket)
        .expect("connect")
        .read_to_string(&mut reply)
        .expect("receive");
    assert!(reply.starts_with("transport=unix-stream"), "{reply}");
}

#[test]
fn bad_config_files_get_precise_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let unknown = write_config(
        dir.path(),
        &format!(
            "[[service]]\nname = \"e\"\nhandler = \"{ECHO}\"\nlisten = [\"tcp:0\"]\nmax_conections = 5\n"
        ),
    );
    assert_one_line_error(&["--config", &unknown], &["max_conections", "line 5"]);

    let bad_address = write_config(
        dir.path(),
        &format!("[[service]]\nname = \"e\"\nhandler = \"{ECHO}\"\nlisten = [\"tcp:nowhere\"]\n"),
    );
    assert_one_line_error(
        &["--config", &bad_address],
        &["service \"e\"", "tcp:nowhere"],
    );

    let missing = write_config(
        dir.path(),
        "[[service]]\nname = \"e\"\nhandler = \"gone.wasm\"\nlisten = [\"tcp:0\"]\n",
    );
    assert_one_line_error(&["--config", &missing], &["gone.wasm", "does not exist"]);

    assert_one_line_error(
        &["--config", "/nonexistent/wasmserve.toml"],
        &["cannot read config"],
    );
    assert_usage_error(&["--config", &missing, "--handler", ECHO], "not both");
    assert_usage_error(
        &["--config", &missing, "--tcp", "0"],
        "config file's `listen`",
    );
}

#[test]
fn check_validates_without_binding_and_lists_every_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = write_config(
        dir.path(),
        &format!("[[service]]\nname = \"e\"\nhandler = \"{ECHO}\"\nlisten = [\"tcp:8100\"]\n"),
    );
    // Port 8100 is only checked, not bound: a taken port does not matter.
    let output = Command::new(WASMSERVE)
        .args(["check", "--config", &good])
        .env("WASMSERVE_CACHE_DIR", CACHE_DIR)
        .output()
        .expect("run check");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok: service \"e\""));

    let bad = write_config(
        dir.path(),
        "[[service]]\nname = \"a\"\nhandler = \"gone.wasm\"\nlisten = [\"unix:/nonexistent-dir/a.sock\"]\n\n[[service]]\nname = \"b\"\nhandler = \"also-gone.wasm\"\nlisten = [\"tcp:0\"]\n",
    );
    let output = Command::new(WASMSERVE)
        .args(["check", "--config", &bad])
        .output()
        .expect("run check");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "gone.wasm",
        "/nonexistent-dir",
        "also-gone.wasm",
        "3 problem(s) found",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from:\n{stderr}");
    }

    let output = Command::new(WASMSERVE)
        .args(["check", "--handler", ECHO])
        .output()
        .expect("run check");
    assert!(output.status.success());
}
