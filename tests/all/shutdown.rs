//! Ctrl-C and SIGTERM stop the server cleanly: in-flight connections finish.

use std::io::{Read, Write};
use std::time::Duration;

use crate::fixtures::ECHO;
use crate::support::Server;

#[test]
fn sigint_on_an_idle_server_exits_zero() {
    let mut server = Server::start(ECHO, &[]);
    let status = server.stop("INT", Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}

#[test]
fn sigterm_lets_an_in_flight_connection_finish() {
    let server = Server::start(ECHO, &["--drain-timeout", "20s"]);
    let mut stream = server.connect();
    stream.write_all(b"first half, ").expect("send");
    let mut reply = [0u8; 12];
    stream.read_exact(&mut reply).expect("receive");

    let pid_addr = server.addr();
    let stopper = std::thread::spawn({
        let mut server_handle = server;
        move || {
            (
                server_handle.stop("TERM", Duration::from_secs(20)),
                server_handle,
            )
        }
    });
    // New connections are refused once the listener is closed...
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(pid_addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...while the one in flight keeps being served to the end.
    stream
        .write_all(b"second half")
        .expect("send after SIGTERM");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("receive after SIGTERM");
    assert_eq!(rest, b"second half");

    let (status, server) = stopper.join().expect("stopper thread");
    assert!(status.success(), "exit status {status}");
    // In flight: our connection, and maybe one of the probes above that
    // connected just before the listener closed; none was cut.
    let line = server.wait_for_log(&["stopped", "cut=0"]);
    assert!(
        line.contains("in_flight=1 drained=1") || line.contains("in_flight=2 drained=2"),
        "{line}"
    );
}

#[test]
fn drain_timeout_cuts_connections_that_do_not_finish() {
    let mut server = Server::start(ECHO, &["--drain-timeout", "300ms"]);
    let mut idle = server.connect();
    idle.write_all(b"x").expect("send");
    let mut reply = [0u8; 1];
    idle.read_exact(&mut reply).expect("receive");
    let status = server.stop("TERM", Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    server.wait_for_log(&["stopped", "in_flight=1", "cut=1"]);
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    assert!(rest.is_empty());
}
