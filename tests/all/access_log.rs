//! The access log: one line per request when it ends, with the peer, the
//! transport, the handler version, the duration, the bytes and the outcome;
//! on stderr by default, in a file of its own, or off.

use std::io::{BufReader, Read, Write};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::fixtures::{ECHO, FAULTY};
use crate::support::{Server, exchange_line};

#[test]
fn every_request_gets_one_access_line_with_peer_bytes_and_outcome() {
    let server = Server::start_with(&["--handler", ECHO, "--tcp", "0", "--udp", "0"], 2);
    let mut client = BufReader::new(server.connect());
    let peer = client.get_ref().local_addr().expect("addr").to_string();
    assert_eq!(exchange_line(&mut client, "hello"), "hello\n");
    drop(client);
    let line = server.wait_for_log(&["wasmserve::access", "transport=\"tcp\""]);
    for part in [
        &format!("peer={peer}"),
        "handler=\"echo.wasm\"",
        "version=\"",
        "served",
        "outcome=\"ok\"",
        "duration_ms=",
        "bytes_in=6",
        "bytes_out=6",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.send_to(b"ping", &server.addrs[1]).expect("send");
    let line = server.wait_for_log(&["wasmserve::access", "transport=\"udp\""]);
    assert!(
        line.contains("bytes_in=4") && line.contains("bytes_out=4"),
        "{line}"
    );
}

#[test]
fn a_failed_request_logs_its_cause() {
    let server = Server::start(FAULTY, &["--max-cpu", "100ms"]);
    let mut client = BufReader::new(server.connect());
    use std::io::{Read, Write};
    client.get_mut().write_all(b"spin\n").expect("send");
    let _ = client.read(&mut [0u8; 16]);
    server.wait_for_log(&["wasmserve::access", "outcome=\"cpu_budget\"", "bytes_in=5"]);
}

#[test]
fn the_access_log_goes_to_its_own_json_file_or_nowhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let path_text = path.to_string_lossy().into_owned();
    let server = Server::start(ECHO, &["--access-log", &path_text, "--log-format", "json"]);
    for _ in 0..3 {
        let mut client = BufReader::new(server.connect());
        assert_eq!(exchange_line(&mut client, "hi"), "hi\n");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect();
        if lines.len() >= 3 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert_eq!(line["target"], "wasmserve::access");
        assert_eq!(line["fields"]["outcome"], "ok");
        assert_eq!(line["fields"]["bytes_in"], 3);
        assert_eq!(line["span"]["transport"], "tcp");
        assert!(
            line["span"]["peer"]
                .as_str()
                .is_some_and(|peer| peer.starts_with("127.0.0.1:"))
        );
    }
    assert!(!server.log_text().contains("wasmserve::access"));

    let quiet = Server::start(ECHO, &["--access-log", "off"]);
    let mut client = BufReader::new(quiet.connect());
    assert_eq!(exchange_line(&mut client, "hi"), "hi\n");
    drop(client);
    // The request's debug line comes after its access line would have.
    quiet.wait_for_log(&["request started"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!quiet.log_text().contains("wasmserve::access"));
}

#[test]
fn a_client_hanging_up_is_not_a_handler_failure() {
    let server = Server::start(FAULTY, &[]);
    // The handler writes until the client goes away.
    let mut client = server.connect();
    client.write_all(b"flood\n").expect("send");
    let mut first = [0u8; 1024];
    client.read_exact(&mut first).expect("the flood begins");
    drop(client);
    let line = server.wait_for_log(&["wasmserve::access", "outcome=\"client_closed\""]);
    assert!(line.contains("INFO"), "{line}");
    // Neither an ERROR line nor a failure.
    assert!(
        !server
            .log_text()
            .contains("request ended by handler failure"),
        "{}",
        server.log_text()
    );
}
