//! The echo handler over TCP: sizes, concurrency, and a Python client.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::fixtures::ECHO;
use crate::support::{Server, pattern, round_trip};

fn assert_echoes(server: &Server, len: usize) {
    let data = pattern(len, len as u64);
    let echoed = round_trip(server.connect(), data.clone());
    assert_eq!(echoed.len(), data.len(), "echoed length for {len} bytes");
    assert!(echoed == data, "echoed bytes differ for {len} bytes");
}

#[test]
fn echoes_one_byte_64_kib_and_4_mib() {
    let server = Server::start(ECHO, &[]);
    for len in [1, 64 * 1024, 4 * 1024 * 1024] {
        assert_echoes(&server, len);
    }
}

#[test]
fn echoes_200_concurrent_connections_each_with_its_own_data() {
    const CLIENTS: usize = 200;
    // One source (127.0.0.1) for all 200: above the default per-source cap.
    let server = Server::start(ECHO, &["--max-connections-per-source", "200"]);
    // Every client connects before any sends, so all 200 are served at once.
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let stream = server.connect();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let data = pattern(16 * 1024 + i, i as u64);
                let echoed = round_trip(stream, data.clone());
                assert!(echoed == data, "client {i} got other bytes back");
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    assert!(!server.log_text().contains("handler failure"));
}

/// Small replies are held and sent together when the server's worker
/// idles. A client sends 1 MiB as 1,000-byte pieces a little apart (so each
/// is read, and its echo held, on its own) and reads nothing for 0.7 s: the
/// Unix socket's buffer (no autotuning, unlike TCP's) fills, a held reply
/// finds it full, and the serving task must send the rest as the client
/// drains it. Every byte comes back, in order.
#[test]
fn a_client_that_reads_late_gets_every_small_reply_in_order() {
    let dir = tempfile::Builder::new()
        .prefix("wasmserve-held-")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join("echo.sock");
    let path_text = path.to_str().expect("utf-8 path");
    let _server = Server::start_with(&["--handler", ECHO, "--unix", path_text], 1);
    let mut stream = UnixStream::connect(&path).expect("connect unix");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let data = pattern(1024 * 1024, 7);
    let mut writer = stream.try_clone().expect("clone stream");
    let sent = data.clone();
    let sender = thread::spawn(move || {
        for piece in sent.chunks(1000) {
            writer.write_all(piece).expect("send");
            thread::sleep(Duration::from_micros(300));
        }
        writer
            .shutdown(std::net::Shutdown::Write)
            .expect("half close");
    });
    thread::sleep(Duration::from_millis(700));
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).expect("receive");
    sender.join().expect("sender thread");
    assert_eq!(echoed.len(), data.len(), "echoed length");
    assert!(echoed == data, "echoed bytes differ");
}

#[test]
fn echo_keeps_a_connection_open_for_many_exchanges() {
    let server = Server::start(ECHO, &[]);
    let mut stream = server.connect();
    for round in 0..100u32 {
        let message = format!("message {round}\n");
        stream.write_all(message.as_bytes()).expect("send");
        let mut reply = vec![0; message.len()];
        stream.read_exact(&mut reply).expect("receive");
        assert_eq!(reply, message.as_bytes());
    }
}

/// The socketserver tutorial's client, in Python, against the echo handler.
#[test]
fn python_socket_client_gets_its_bytes_echoed() {
    let server = Server::start(ECHO, &[]);
    let script = r#"
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.connect(("127.0.0.1", int(sys.argv[1])))
    sock.sendall(b"Hello from Python\n")
    received = sock.recv(1024)
print(received.decode(), end="")
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(server.addr().port().to_string())
        .output()
        .expect("python3 is needed for this test (it is on every machine of this project)");
    assert!(
        output.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Hello from Python\n"
    );
}
