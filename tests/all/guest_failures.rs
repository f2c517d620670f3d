//! A misbehaving guest ends only its own connection; its output is logged.

use std::io::{BufReader, Write};

use crate::fixtures::FAULTY;
use crate::support::{Server, exchange_line, read_to_end};

#[test]
fn a_trap_ends_only_its_own_connection() {
    let server = Server::start(FAULTY, &[]);
    let mut bystander = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut bystander, "before"), "before\n");

    let mut offender = server.connect();
    offender.write_all(b"panic\n").expect("send");
    let rest = read_to_end(offender);
    assert!(rest.is_empty(), "a trapped connection sends nothing more");
    let line = server.wait_for_log(&["handler trapped", "conn{"]);
    assert!(line.contains("faulty.wasm"), "{line}");
    server.wait_for_log(&["asked to panic"]);

    // The connection that was open during the trap still works, and so do
    // new ones.
    assert_eq!(exchange_line(&mut bystander, "after"), "after\n");
    let mut newcomer = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut newcomer, "new"), "new\n");
}

#[test]
fn an_error_returned_by_handle_is_logged() {
    let server = Server::start(FAULTY, &[]);
    let mut stream = server.connect();
    stream.write_all(b"error\n").expect("send");
    assert!(read_to_end(stream).is_empty());
    server.wait_for_log(&["handler returned an error: asked to fail"]);
    let mut next = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut next, "still here"), "still here\n");
}

#[test]
fn guest_stdout_and_stderr_become_log_lines_of_the_connection() {
    let server = Server::start(FAULTY, &[]);
    let mut stream = BufReader::new(server.connect());
    let port = stream.get_ref().local_addr().expect("local addr").port();
    assert_eq!(exchange_line(&mut stream, "print hello"), "printed\n");
    let peer = format!("127.0.0.1:{port}");
    let stdout = server.wait_for_log(&["stdout says hello"]);
    assert!(
        stdout.contains("conn{") && stdout.contains(&peer),
        "{stdout}"
    );
    assert!(stdout.contains("INFO"), "{stdout}");
    let stderr = server.wait_for_log(&["stderr says hello"]);
    assert!(
        stderr.contains("WARN") && stderr.contains(&peer),
        "{stderr}"
    );
}

#[test]
fn max_memory_bounds_each_instance() {
    let server = Server::start(FAULTY, &["--max-memory", "16"]);
    let mut small = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut small, "grow 4"), "grew 4\n");

    let mut big = server.connect();
    big.write_all(b"grow 32\n").expect("send");
    assert!(
        read_to_end(big).is_empty(),
        "an instance over the limit is ended"
    );
    server.wait_for_log(&["cause=\"out_of_memory\"", "ran out of memory"]);

    // The limit is per instance: a new connection may use 4 MiB again, and
    // the connection that stayed within it is unaffected.
    assert_eq!(exchange_line(&mut small, "grow 4"), "grew 4\n");
    let mut fresh = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut fresh, "grow 8"), "grew 8\n");
}
