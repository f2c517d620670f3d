//! A client that hangs up: a request whose TCP client reset the connection
//! ends `--hangup-grace` later, with everything its instance held, even if
//! its handler waits on something else; a client that only closed its side
//! (a half-close) is still served.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::fixtures::FAULTY;
use crate::support::{Server, descriptors};

/// The server's `connections_active` gauge.
fn active(server: &Server) -> String {
    crate::observing::scrape(&server.addrs[1])
        .lines()
        .find(|line| line.starts_with("wasmserve_connections_active{"))
        .map(str::to_owned)
        .unwrap_or_default()
}

/// Waits up to 5 s for `done`.
fn within_5s(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_request_whose_client_reset_is_ended_and_drops_what_it_held() {
    let server = Server::start_with(
        &[
            "--handler",
            FAULTY,
            "--tcp",
            "0",
            "--metrics",
            "0",
            "--allow-connect",
            "127.0.0.1:9",
            "--max-outbound",
            "100",
            "--max-connections",
            "16",
            "--hangup-grace",
            "500ms",
        ],
        2,
    );
    let before = descriptors(&server);
    // The handler creates 50 sockets and then waits a minute on a timer,
    // not on its client.
    let client = TcpStream::connect(&server.addrs[0]).expect("connect");
    (&client)
        .write_all(b"hoard-sockets 50 60000\n")
        .expect("send");
    within_5s("the handler holds its sockets", || {
        descriptors(&server) >= before + 50
    });
    // The client resets the connection (SO_LINGER 0, then close).
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(client);
    within_5s("the request ended", || active(&server).ends_with(" 0"));
    within_5s("its sockets were closed", || {
        descriptors(&server) <= before + 2
    });
    let (_, body) = crate::observing::fetch_metrics(&server.addrs[1], None);
    assert!(
        body.contains("reason=\"hung_up\"} 1"),
        "no hung_up count in:\n{body}"
    );
}

#[test]
fn a_client_that_only_closed_its_side_is_still_answered() {
    let server = Server::start_with(
        &[
            "--handler",
            FAULTY,
            "--tcp",
            "0",
            "--metrics",
            "0",
            "--hangup-grace",
            "100ms",
        ],
        2,
    );
    let client = TcpStream::connect(&server.addrs[0]).expect("connect");
    (&client).write_all(b"sleep 800\n").expect("send");
    client.shutdown(Shutdown::Write).expect("half-close");
    let mut reply = String::new();
    BufReader::new(&client)
        .read_line(&mut reply)
        .expect("reply");
    assert_eq!(reply, "slept 800\n");
}
