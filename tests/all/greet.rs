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
