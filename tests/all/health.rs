//! `/healthz` and `/readyz` beside `/metrics`: ready once every listener is
//! bound and every handler loaded, not ready once draining.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::fixtures::FAULTY;
use crate::support::Server;

/// `GET path` over HTTP/1.0: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: wasmserve\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn ready_while_serving_and_not_ready_while_draining() {
    let mut server = Server::start_with_metrics(FAULTY, &["--drain-timeout", "20s"]);
    let metrics = server.addrs[1].clone();
    assert_eq!(http_get(&metrics, "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(http_get(&metrics, "/readyz"), (200, "ready\n".to_owned()));
    assert_eq!(http_get(&metrics, "/nothing").0, 404);
    // A request in flight keeps the process draining after SIGTERM.
    let mut busy = BufReader::new(server.connect());
    busy.get_mut().write_all(b"sleep 2000\n").expect("send");
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut readiness = http_get(&metrics, "/readyz");
    while readiness.0 == 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        readiness = http_get(&metrics, "/readyz");
    }
    assert_eq!(readiness, (503, "not ready: draining\n".to_owned()));
    assert_eq!(http_get(&metrics, "/healthz").0, 200);
    let mut reply = String::new();
    std::io::BufRead::read_line(&mut busy, &mut reply).expect("the reply");
    assert_eq!(reply, "slept 2000\n");
    drop(busy);
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}");
}
