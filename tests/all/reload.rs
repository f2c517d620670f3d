//! Hot swap (SIGHUP, --watch) with no connection refused, cut or mixed, and
//! settings passed to the guest (--set).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::fixtures::{ECHO, GREET, UPPERCASE};
use crate::support::{Server, read_to_end, round_trip};

const RELOADED: &str = "handler reloaded";

/// Replaces the handler file the way a deploy would: write aside, rename.
fn install(source: &str, path: &Path) {
    let staging = path.with_extension("tmp");
    std::fs::copy(source, &staging).expect("copy handler");
    std::fs::rename(&staging, path).expect("rename handler into place");
}

fn ask(server: &Server, text: &str) -> String {
    String::from_utf8(round_trip(server.connect(), text.as_bytes().to_vec())).expect("utf-8")
}

#[test]
fn greet_reads_its_greeting_from_a_setting() {
    let server = Server::start(GREET, &["--set", "greeting=hello"]);
    assert_eq!(read_to_end(server.connect()), b"hello");
}

#[test]
fn sighup_swaps_the_handler_for_new_connections_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("handler.wasm");
    install(ECHO, &path);
    let server = Server::start(path.to_str().expect("utf-8"), &[]);
    let mut old = server.connect();
    old.write_all(b"before").expect("send");
    let mut reply = [0u8; 6];
    old.read_exact(&mut reply).expect("receive");

    install(UPPERCASE, &path);
    server.signal("HUP");
    let line = server.wait_for_log(&[RELOADED, "trigger=\"SIGHUP\""]);
    assert!(line.contains("from=") && line.contains("to="), "{line}");
    assert_eq!(ask(&server, "shout"), "SHOUT");

    // The connection opened before the swap stays on the old version.
    old.write_all(b"after").expect("send");
    old.shutdown(std::net::Shutdown::Write).expect("half close");
    assert_eq!(read_to_end(old), b"after");
}

#[test]
fn a_broken_replacement_keeps_the_old_handler_serving() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("handler.wasm");
    install(ECHO, &path);
    let server = Server::start_with(
        &[
            "--handler",
            path.to_str().expect("utf-8"),
            "--tcp",
            "0",
            "--metrics",
            "0",
        ],
        2,
    );
    std::fs::write(&path, b"not wasm at all").expect("break the handler");
    server.signal("HUP");
    let line = server.wait_for_log(&["handler reload failed"]);
    assert!(line.contains("not a WebAssembly file"), "{line}");
    assert_eq!(ask(&server, "still echo"), "still echo");
    let metrics = crate::observing::scrape(&server.addrs[1]);
    assert!(
        metrics.contains(
            "wasmserve_handler_reloads_total{service=\"handler.wasm\",result=\"failed\"} 1"
        ),
        "{metrics}"
    );
}

#[test]
fn watch_reloads_when_the_file_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("handler.wasm");
    install(ECHO, &path);
    let server = Server::start(path.to_str().expect("utf-8"), &["--watch"]);
    assert_eq!(ask(&server, "quiet"), "quiet");
    install(UPPERCASE, &path);
    server.wait_for_log(&[RELOADED, "trigger=\"watch\""]);
    assert_eq!(ask(&server, "loud"), "LOUD");
}

/// 20 clients keep opening connections and streaming while the handler is
/// swapped 10 times, by signal and by file watch: no connection fails, and
/// each one is served by exactly one version.
#[test]
fn ten_swaps_under_load_drop_nothing_and_mix_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("handler.wasm");
    install(ECHO, &path);
    let server = Arc::new(Server::start(path.to_str().expect("utf-8"), &["--watch"]));
    let stop = Arc::new(AtomicBool::new(false));
    let (lower, upper) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..20)
        .map(|client| {
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            let (lower, upper) = (Arc::clone(&lower), Arc::clone(&upper));
            thread::spawn(move || {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut stream = server.connect();
                    let chunks = [
                        format!("client{client}-"),
                        format!("round{round}-"),
                        "end".to_owned(),
                    ];
                    let mut reader = stream.try_clone().expect("clone");
                    let sent = chunks.concat();
                    let writer = thread::spawn(move || {
                        for chunk in chunks {
                            stream.write_all(chunk.as_bytes()).expect("send");
                            thread::sleep(Duration::from_millis(5));
                        }
                        stream
                            .shutdown(std::net::Shutdown::Write)
                            .expect("half close");
                    });
                    let mut reply = String::new();
                    reader.read_to_string(&mut reply).expect("receive");
                    writer.join().expect("writer");
                    if reply == sent {
                        lower.fetch_add(1, Ordering::Relaxed);
                    } else if reply == sent.to_uppercase() {
                        upper.fetch_add(1, Ordering::Relaxed);
                    } else {
                        panic!("mixed or lost reply {reply:?} for {sent:?}");
                    }
                    round += 1;
                }
            })
        })
        .collect();

    for swap in 1..=10 {
        thread::sleep(Duration::from_millis(100));
        let (source, expected) = if swap % 2 == 1 {
            (UPPERCASE, "ABC")
        } else {
            (ECHO, "abc")
        };
        install(source, &path);
        if swap % 4 == 0 {
            server.signal("HUP");
        }
        server.wait_for_count(RELOADED, swap);
        assert_eq!(ask(&server, "abc"), expected, "after swap {swap}");
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client failed during the swaps");
    }
    let (lower, upper) = (lower.load(Ordering::Relaxed), upper.load(Ordering::Relaxed));
    assert!(
        lower > 0 && upper > 0,
        "both versions served: {lower} / {upper}"
    );
    assert!(
        !server.log_text().contains("handler failure"),
        "{}",
        server.log_text()
    );
}
