//! A client that hangs up: a request whose TCP client reset the connection
//! ends `--hangup-grace` later, with everything its instance held, even if
//! its handler waits on something else; a client that only closed its side
//! (a half-close) is still served.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::fixtures::FAULTY;
use crate::support::{Server, descriptors, within_5s};

/// The server's `connections_active` line.
fn active(server: &Server) -> String {
    crate::observing::connections_active(&server.addrs[1])
}

#[test]
fn a_request_whose_client_reset_is_ended_and_drops_what_it_held() {
    let server = Server::start_with_metrics(
        FAULTY,
        &[
            "--allow-connect",
            "127.0.0.1:9",
            "--max-outbound",
            "100",
            "--max-connections",
            "16",
            "--hangup-grace",
            "500ms",
        ],
    );
    let before = descriptors(&server);
    // The handler creates 50 sockets and then waits a minute on a timer,
    // not on its client.
    let client = TcpStream::connect(&server.addrs[0]).expect("connect");
    (&client)
        .write_all(b"hoard-sockets 50 60000\n")
        .expect("send");
    // (45 of 50: `before` may have counted a descriptor or two of the
    // start-up, such as the compile cache's file, that have closed since.)
    within_5s("the handler holds its sockets", || {
        descriptors(&server) >= before + 45
    });
    // The client resets the connection (SO_LINGER 0, then close).
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(client);
    within_5s("the request ended", || active(&server).ends_with(" 0"));
    // Its 50 sockets closed (a few descriptors may come and go meanwhile:
    // the metrics scrapes' connections, the compile cache's file).
    within_5s(
        &format!("its sockets were closed (held {before} before)"),
        || descriptors(&server) < before + 10,
    );
    let (_, body) = crate::observing::fetch_metrics(&server.addrs[1], None);
    assert!(
        body.contains("reason=\"hung_up\"} 1"),
        "no hung_up count in:\n{body}"
    );
}

#[test]
fn a_client_that_only_closed_its_side_is_still_answered() {
    let server = Server::start_with_metrics(FAULTY, &["--hangup-grace", "100ms"]);
    let client = TcpStream::connect(&server.addrs[0]).expect("connect");
    (&client).write_all(b"sleep 800\n").expect("send");
    client.shutdown(Shutdown::Write).expect("half-close");
    let mut reply = String::new();
    BufReader::new(&client)
        .read_line(&mut reply)
        .expect("reply");
    assert_eq!(reply, "slept 800\n");
}

#[test]
fn a_tls_request_whose_client_reset_is_ended_too() {
    // TLS is terminated by the host's relay: the relay, not the handler's
    // (plaintext) socket, sees the reset.
    let pki = crate::pki::Pki::new();
    let flags = pki.server_flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(["--hangup-grace", "300ms"]);
    let server = Server::start_with_metrics(FAULTY, &args);
    let mut client =
        crate::pki::tls_connect(pki.client_config(None, &[]), &server.addrs[0], "localhost")
            .expect("handshake");
    client.write_all(b"sleep 60000\n").expect("send");
    client.flush().expect("flush");
    within_5s("the request is served", || active(&server).ends_with(" 1"));
    socket2::SockRef::from(&client.sock)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(client);
    within_5s("the request ended", || active(&server).ends_with(" 0"));
    let (_, body) = crate::observing::fetch_metrics(&server.addrs[1], None);
    assert!(body.contains("reason=\"hung_up\"} 1"), "{body}");
}
