//! Handlers written in Python (componentize-py) and JavaScript (jco with
//! QuickJS) pass the same echo and greet checks as the Rust ones, over TCP
//! and UDP. `tests/build.rs` builds them; where a toolchain could not be
//! installed, these tests are ignored (the build printed why).

use crate::contract::{check_ticker, check_timeout_greet};
use crate::fixtures::{ECHO_JS, ECHO_PY, GREET_JS, GREET_PY, TICKER_PY, TIMEOUT_GREET_PY};
use std::io::BufReader;

use crate::support::{Server, exchange_line, pattern, read_to_end, round_trip, rss_kib};
use crate::transports::{udp_client, udp_exchange};

/// Connections held at once in [`check_echo`]: as many as the pool has
/// instances for them, so a pool sized too small for the language's components (more
/// memories or core instances than a Rust handler) shows.
const HELD: usize = 20;

/// Echo over TCP (a 64 KiB payload, then `HELD` connections at once) and
/// UDP, from one server.
fn check_echo(handler: &str) {
    // One slot more than the connections held, as a margin (an idle
    // listener holds no slot).
    let max = (HELD + 1).to_string();
    let server = Server::start_with(
        &[
            "--handler",
            handler,
            "--tcp",
            "0",
            "--udp",
            "0",
            "--max-connections",
            &max,
        ],
        2,
    );
    let data = pattern(64 * 1024, 7);
    assert_eq!(round_trip(server.connect(), data.clone()), data);
    drop(hold_after_one_echo(&server, HELD));
    let client = udp_client(&server.addrs[1]);
    assert_eq!(udp_exchange(&client, b"one datagram"), b"one datagram");
    assert_eq!(udp_exchange(&client, &data[..1000]), &data[..1000]);
}

/// `count` connections to `server`, held open after one echoed line each.
fn hold_after_one_echo(server: &Server, count: usize) -> Vec<BufReader<std::net::TcpStream>> {
    let mut held: Vec<_> = (0..count)
        .map(|_| BufReader::new(server.connect()))
        .collect();
    for (n, stream) in held.iter_mut().enumerate() {
        let line = format!("held {n}");
        assert_eq!(exchange_line(stream, &line), format!("{line}\n"));
    }
    held
}

/// Greet over TCP and UDP, with the default greeting and with a setting.
fn check_greet(handler: &str) {
    let server = Server::start_with(&["--handler", handler, "--tcp", "0", "--udp", "0"], 2);
    assert_eq!(read_to_end(server.connect()), b"Thank you for connecting");
    let client = udp_client(&server.addrs[1]);
    assert_eq!(udp_exchange(&client, b"hi"), b"Thank you for connecting");
    let server = Server::start(handler, &["--set", "greeting=hello from a setting"]);
    assert_eq!(read_to_end(server.connect()), b"hello from a setting");
}

#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "componentize-py could not be installed or run here (tests/build.rs printed why)"
)]
fn python_echo_and_greet_over_tcp_and_udp() {
    check_echo(ECHO_PY);
    check_greet(GREET_PY);
}

#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "componentize-py could not be installed or run here (tests/build.rs printed why)"
)]
fn a_python_stream_request_handler_reads_lines_and_sees_socketservers_client_address() {
    use std::io::{BufRead, BufReader, Read, Write};
    let server = Server::start(crate::fixtures::UPPERCASE_PY, &["--set", "hello=1"]);
    let stream = server.connect();
    let port = stream.local_addr().expect("local address").port();
    let mut client = BufReader::new(stream);
    let mut hello = String::new();
    client.read_line(&mut hello).expect("hello");
    assert_eq!(hello, format!("hello 127.0.0.1 port {port}\n"));
    // Two lines in one segment, then a line split across two: rfile's
    // lines come out whole, and what follows the last newline at the end.
    let writer = client.get_mut();
    writer.write_all(b"one\ntwo\nthr").expect("send");
    writer.flush().expect("flush");
    std::thread::sleep(std::time::Duration::from_millis(100));
    writer.write_all(b"ee\nrest").expect("send");
    writer
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut answer = String::new();
    client.read_to_string(&mut answer).expect("answer");
    assert_eq!(answer, "ONE\nTWO\nTHREE\nREST");
}

#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "componentize-py could not be installed or run here (tests/build.rs printed why)"
)]
fn python_async_handlers_race_reads_and_timers() {
    check_timeout_greet(TIMEOUT_GREET_PY);
    check_ticker(TICKER_PY);
}

#[test]
#[cfg_attr(
    wasmserve_no_js,
    ignore = "componentize-js could not be installed or run here (tests/build.rs printed why)"
)]
fn javascript_echo_and_greet_over_tcp_and_udp() {
    check_echo(ECHO_JS);
    check_greet(GREET_JS);
}

#[test]
#[cfg_attr(
    wasmserve_no_js,
    ignore = "componentize-js could not be installed or run here (tests/build.rs printed why)"
)]
fn javascript_races_a_read_and_a_timer_and_counts_visits() {
    crate::contract::check_timeout_greet(crate::fixtures::TIMEOUT_GREET_JS);
    crate::shared_state::check_visits(crate::fixtures::VISITS_JS);
}

/// Python connections held at once in
/// [`a_python_connection_maps_only_the_image_pages_it_reads`].
const HELD_PY: usize = 20;

#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "componentize-py could not be installed or run here (tests/build.rs printed why)"
)]
fn a_python_connection_maps_only_the_image_pages_it_reads() {
    // Linux maps up to 16 neighbouring pages of a file mapping with each
    // read fault; in a memory image, each of them counts in the slot's RSS
    // and is walked by every reset's scan. wasmserve's wasmtime turns that
    // off by registering each image mapping with a userfaultfd: where the
    // kernel refuses userfaultfd, the mapping keeps fault-around.
    if !userfaultfd_allowed() {
        eprintln!("userfaultfd is refused here: image mappings keep fault-around; not checked");
        return;
    }
    let max = (HELD_PY + 2).to_string();
    let server = Server::start(ECHO_PY, &["--max-connections", &max]);
    let mut warm = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut warm, "warm"), "warm\n");
    drop(warm);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = rss_kib(&server);
    let _held = hold_after_one_echo(&server, HELD_PY);
    let per_connection = rss_kib(&server).saturating_sub(before) / HELD_PY as u64;
    eprintln!("{per_connection} KiB of RSS per held Python connection");
    // About 1.5 MiB here; with fault-around, about 7 MiB.
    assert!(
        per_connection < 3 * 1024,
        "{per_connection} KiB of RSS per held Python connection"
    );
}

/// Whether the server, a child of this process, may register its memory
/// images with a userfaultfd: the kernel has userfaultfd, is 6.1 or newer
/// (write protection of shared memory came in 5.19), and no seccomp filter
/// stands in the way.
fn userfaultfd_allowed() -> bool {
    let has_userfaultfd = std::path::Path::new("/proc/sys/vm/unprivileged_userfaultfd").exists();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let no_seccomp = status
        .lines()
        .any(|line| line.split_whitespace().eq(["Seccomp:", "0"]));
    has_userfaultfd && version >= (6, 1) && no_seccomp
}
