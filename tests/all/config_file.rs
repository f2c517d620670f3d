//! The configuration file (several services in one process) and `check`.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::process::Command;

use crate::fixtures::{ECHO, WHOAMI};
use crate::support::{
    CACHE_DIR, Server, WASMSERVE, assert_one_line_error, assert_usage_error, round_trip,
    write_config,
};

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

    // `check` compiles through the compile cache, as serving does: the
    // server started after it (or a second check) skips compiling.
    let cache = tempfile::tempdir().expect("temp dir");
    let output = Command::new(WASMSERVE)
        .args(["check", "--handler", ECHO])
        .env("WASMSERVE_CACHE_DIR", cache.path())
        .output()
        .expect("run check");
    assert!(output.status.success());
    let mut folders = vec![cache.path().join("compiled")];
    let mut files = 0;
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            match entry.path().is_dir() {
                true => folders.push(entry.path()),
                false => files += 1,
            }
        }
    }
    assert!(files > 0, "check left nothing in the compile cache");
}

/// SIGHUP re-reads the file: a changed service restarts on the socket it
/// already had (same port, no refused client), a removed one goes away, an
/// added one starts; a bad file changes nothing.
#[test]
fn sighup_applies_a_changed_config_keeping_unchanged_listeners() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let dir = tempfile::tempdir().expect("temp dir");
    let greet_socket = dir.path().join("greet.sock");
    let who_socket = dir.path().join("who.sock");
    let v1 = format!(
        "[[service]]\nname = \"main\"\nhandler = \"{ECHO}\"\nlisten = [\"tcp:0\"]\n\n\
         [[service]]\nname = \"greet\"\nhandler = \"{}\"\nlisten = [\"unix:{}\"]\n",
        crate::fixtures::GREET,
        greet_socket.display()
    );
    let config = write_config(dir.path(), &v1);
    let server = Arc::new(Server::start_with(&["--config", &config], 2));
    let port = server.addr();
    assert_eq!(round_trip(server.connect(), b"abc".to_vec()), b"abc");
    let mut before = server.connect();
    before.write_all(b"x").expect("send");

    // Clients keep connecting through the reload: none may be refused.
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    let prober = {
        let (stop, refused) = (Arc::clone(&stop), Arc::clone(&refused));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match std::net::TcpStream::connect(port) {
                    Ok(stream) => drop(round_trip(stream, b"probe".to_vec())),
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let v2 = format!(
        "[[service]]\nname = \"main\"\nhandler = \"{}\"\nlisten = [\"tcp:0\"]\n\n\
         [[service]]\nname = \"who\"\nhandler = \"{WHOAMI}\"\nlisten = [\"unix:{}\"]\n",
        crate::fixtures::UPPERCASE,
        who_socket.display()
    );
    write_config(dir.path(), &v2);
    server.signal("HUP");
    server.wait_for_log(&["configuration reloaded"]);
    // Same port: the socket was handed over, not closed and reopened.
    assert_eq!(round_trip(server.connect(), b"abc".to_vec()), b"ABC");
    assert!(
        !greet_socket.exists(),
        "the removed service's socket is gone"
    );
    let mut reply = String::new();
    UnixStream::connect(&who_socket)
        .expect("the added service listens")
        .read_to_string(&mut reply)
        .expect("receive");
    assert!(reply.starts_with("transport=unix-stream"), "{reply}");
    // A connection opened before the reload finishes on the old version.
    before
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    assert_eq!(crate::support::read_to_end(before), b"x");

    write_config(dir.path(), "[[service]]\nname = \"main\"\nbogus = 1\n");
    server.signal("HUP");
    server.wait_for_log(&["configuration reload failed", "bogus"]);
    assert_eq!(round_trip(server.connect(), b"still".to_vec()), b"STILL");

    stop.store(true, Ordering::Relaxed);
    prober.join().expect("prober");
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "clients were refused during the reload"
    );
}
