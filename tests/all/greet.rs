//! The greet handler, the `listening` line, and swapping handlers.

use std::io::Write;

use crate::fixtures::{ECHO, GREET};
use crate::support::{Server, read_to_end};

const GREETING: &[u8] = b"Thank you for connecting";

#[test]
fn greet_sends_the_greeting_then_closes() {
    let server = Server::start(GREET, &[]);
    for _ in 0..3 {
        assert_eq!(read_to_end(server.connect()), GREETING);
    }
}

#[test]
fn prints_one_listening_line_per_listener() {
    let server = Server::start_with(
        &["--handler", GREET, "--tcp", "0", "--tcp", "127.0.0.1:0"],
        2,
    );
    for (line, addr) in server.listening.iter().zip(&server.addrs) {
        assert_eq!(line, &format!("listening tcp {addr} handler=greet.wasm"));
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        assert!(!addr.ends_with(":0"), "port 0 is replaced by the real port");
    }
    assert_ne!(server.addrs[0], server.addrs[1]);
    for addr in &server.addrs {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        assert_eq!(read_to_end(stream), GREETING);
    }
}

/// The same binary behaves differently with another handler: no rebuild.
#[test]
fn two_servers_with_different_handlers_behave_differently() {
    let echo = Server::start(ECHO, &[]);
    let greet = Server::start(GREET, &[]);
    for server in [&echo, &greet] {
        let mut stream = server.connect();
        stream.write_all(b"hello").expect("send");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half close");
        let reply = read_to_end(stream);
        let expected: &[u8] = if std::ptr::eq(server, &echo) {
            b"hello"
        } else {
            GREETING
        };
        assert_eq!(reply, expected);
    }
}

#[test]
fn serves_on_ipv6_loopback() {
    let server = Server::start_with(&["--handler", GREET, "--tcp", "[::1]:0"], 1);
    assert!(server.addr().is_ipv6());
    assert!(server.listening[0].starts_with("listening tcp [::1]:"));
    assert_eq!(read_to_end(server.connect()), GREETING);
}

/// A handler compiled once is kept in the compile cache, keyed by content:
/// the first server fills a fresh cache directory, the second adds nothing,
/// and `--no-cache` still serves.
#[test]
fn compiled_handlers_are_cached_on_disk() {
    let cache = tempfile::tempdir().expect("temp dir");
    let dir = cache.path().to_str().expect("utf-8 path");
    // Compiled artifacts only: wasmtime's cache also keeps usage `.stats`
    // files, `.cleanup.wip-PID` markers and `NAME.wip-*` locks that its
    // background worker writes whenever it likes (and that stay behind when
    // the server is killed mid-update: CI once counted 251 against 250).
    let count_files = || {
        fn walk(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| {
                    let path = entry.path();
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if path.is_dir() {
                        walk(&path)
                    } else if name.ends_with(".stats")
                        || name.starts_with(".cleanup")
                        || name.contains(".wip-")
                    {
                        0
                    } else {
                        1
                    }
                })
                .sum()
        }
        walk(cache.path())
    };
    let server = Server::start(GREET, &["--cache-dir", dir]);
    assert_eq!(read_to_end(server.connect()), GREETING);
    drop(server);
    let cached = count_files();
    assert!(cached > 0, "nothing was cached in {dir}");

    let again = Server::start(GREET, &["--cache-dir", dir]);
    assert_eq!(read_to_end(again.connect()), GREETING);
    drop(again);
    assert_eq!(
        count_files(),
        cached,
        "an unchanged handler is not cached twice"
    );

    let server = Server::start(GREET, &["--no-cache"]);
    assert_eq!(read_to_end(server.connect()), GREETING);
}
