//! The `chatroom` example: many clients in one room, on one host or on two
//! sharing a real Redis.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::fixtures::{CHATROOM, CHATROOM_PY};
use crate::redis_server::RedisServer;
use crate::support::Server;

/// Connects `clients` clients, spread over `servers` in turn; each renames
/// itself `cN` and sends `lines` numbered lines once all have joined.
/// Asserts every client receives every other client's lines, each
/// sender's in order, and none of its own.
fn room_delivers_everything(servers: &[&Server], clients: usize, lines: usize) {
    let joined = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|me| {
            let addr = servers[me % servers.len()].addr();
            let joined = Arc::clone(&joined);
            thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(60)))
                    .expect("timeout");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut welcome = String::new();
                reader.read_line(&mut welcome).expect("welcome");
                assert!(welcome.starts_with("* welcome"), "{welcome:?}");
                all_joined(&joined, clients);
                let writer = thread::spawn(move || {
                    let mut stream = stream;
                    let mut text = format!("/nick c{me}\n");
                    for line in 0..lines {
                        text.push_str(&format!("line {line}\n"));
                    }
                    stream.write_all(text.as_bytes()).expect("send lines");
                    stream
                });
                let mut next: HashMap<String, usize> = HashMap::new();
                let expected = (clients - 1) * lines;
                let mut received = 0;
                while received < expected {
                    let mut line = String::new();
                    let read = reader.read_line(&mut line).unwrap_or(0);
                    assert!(
                        read > 0,
                        "client {me}: {received} of {expected} lines, then nothing"
                    );
                    if line.starts_with("* ") {
                        assert!(!line.contains("missed"), "client {me} lost lines: {line}");
                        continue;
                    }
                    let (sender, text) = line.trim_end().split_once(": ").expect("NAME: text");
                    assert_ne!(sender, format!("c{me}"), "client {me} heard itself");
                    let number: usize = text
                        .strip_prefix("line ")
                        .and_then(|n| n.parse().ok())
                        .expect("a numbered line");
                    let expected_number = next.entry(sender.to_owned()).or_default();
                    assert_eq!(
                        number, *expected_number,
                        "client {me}: {sender} out of order"
                    );
                    *expected_number += 1;
                    received += 1;
                }
                assert_eq!(next.len(), clients - 1, "client {me} heard {next:?}");
                writer.join().expect("writer")
            })
        })
        .collect();
    let streams: Vec<TcpStream> = threads
        .into_iter()
        .map(|thread| thread.join().expect("a client failed"))
        .collect();
    drop(streams);
}

/// Counts this client in and waits (at most 30 s, so a client that failed
/// to join fails the test instead of hanging it) until `clients` are.
fn all_joined(joined: &AtomicUsize, clients: usize) {
    joined.fetch_add(1, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while joined.load(Ordering::SeqCst) < clients {
        assert!(
            Instant::now() < deadline,
            "only {joined:?} of {clients} clients joined"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn fifty_clients_hear_each_others_two_thousand_lines_in_order() {
    // Each member's queue holds the whole burst (50 x 41 lines and the
    // notices), so no line may be lost however slowly a member's instance
    // runs on a busy machine; the default (1,024) would lose the oldest.
    let server = Server::start(CHATROOM, &["--channel-queue", "4096"]);
    room_delivers_everything(&[&server], 50, 40);
}

#[test]
fn nick_who_joins_and_leaves() {
    nick_who_joins_and_leaves_in(CHATROOM);
}

#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "componentize-py could not be installed or run here (tests/build.rs printed why)"
)]
fn the_python_chatroom_works_alike() {
    nick_who_joins_and_leaves_in(CHATROOM_PY);
    let server = Server::start(CHATROOM_PY, &[]);
    room_delivers_everything(&[&server], 10, 20);
}

#[test]
#[cfg_attr(
    wasmserve_no_js,
    ignore = "componentize-js could not be installed or run here (tests/build.rs printed why)"
)]
fn the_javascript_chatroom_works_alike() {
    nick_who_joins_and_leaves_in(crate::fixtures::CHATROOM_JS);
    let server = Server::start(crate::fixtures::CHATROOM_JS, &[]);
    room_delivers_everything(&[&server], 10, 20);
}

/// `/nick`, `/who`, `/quit` and the notices, on `handler`'s room.
fn nick_who_joins_and_leaves_in(handler: &str) {
    let server = Server::start(handler, &[]);
    let mut alice = BufReader::new(server.connect());
    let mut line = String::new();
    alice.read_line(&mut line).expect("welcome");
    let send = |reader: &mut BufReader<TcpStream>, text: &str| {
        reader.get_mut().write_all(text.as_bytes()).expect("send");
    };
    let read = |reader: &mut BufReader<TcpStream>| {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read");
        line
    };
    send(&mut alice, "/nick alice\n/who\n");
    assert_eq!(read(&mut alice), "* members: alice\n");

    let mut bob = BufReader::new(server.connect());
    assert!(read(&mut bob).starts_with("* welcome, you are guest-"));
    assert!(read(&mut alice).ends_with(" joined\n"));
    send(&mut bob, "/nick alice\n");
    assert_eq!(read(&mut bob), "* alice is taken\n");
    send(&mut bob, "/nick bob\nhi alice\n");
    assert!(read(&mut alice).ends_with(" is now known as bob\n"));
    assert_eq!(read(&mut alice), "bob: hi alice\n");
    send(&mut alice, "/who\n");
    assert_eq!(read(&mut alice), "* members: alice, bob\n");
    send(&mut bob, "/quit\n");
    assert_eq!(read(&mut bob), "* bye\n");
    assert_eq!(read(&mut alice), "* bob left\n");
    send(&mut alice, "/who\n");
    assert_eq!(read(&mut alice), "* members: alice\n");
}

#[test]
#[cfg_attr(
    wasmserve_no_redis,
    ignore = "redis-server is not installed (Debian package redis-server; .ci/run installs it)"
)]
fn two_wasmserve_processes_sharing_redis_form_one_room() {
    let redis = RedisServer::start();
    let url = redis.url();
    let first = Server::start(CHATROOM, &["--state", &url]);
    let second = Server::start(CHATROOM, &["--state", &url]);
    room_delivers_everything(&[&first, &second], 10, 30);
}

#[test]
#[cfg_attr(
    wasmserve_no_redis,
    ignore = "redis-server is not installed (Debian package redis-server; .ci/run installs it)"
)]
fn the_room_comes_back_after_redis_restarts() {
    let mut redis = RedisServer::start();
    let (port, url) = (redis.port, redis.url());
    let first = Server::start(CHATROOM, &["--state", &url]);
    let second = Server::start(CHATROOM, &["--state", &url]);
    room_delivers_everything(&[&first, &second], 4, 5);
    redis.stop();
    // Both hosts notice and reconnect once Redis is back; members who
    // join afterwards are one room again.
    first.wait_for_log(&["lost the connection to Redis"]);
    let _redis = RedisServer::start_on(port);
    first.wait_for_log(&["reconnected to Redis"]);
    second.wait_for_log(&["reconnected to Redis"]);
    room_delivers_everything(&[&first, &second], 4, 5);
}
