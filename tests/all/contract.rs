//! Every released contract version on the current host (the compatibility
//! matrix): handlers built from each version's WIT alone, without the SDK
//! — `legacy` (0.1.1), `contract-0-2-0` (0.2.0 as released),
//! `contract-0-2-1` (0.2.1 as released), `contract-0-2-2` (0.2.2 as
//! released), `contract-0-2-3` (0.2.3 as released) — the SDK's (the
//! current 0.2.4) blocking echo and greet,
//! and the streams echo (0.2's `wasi:io/streams`) pass the same echo and
//! greet checks over TCP, UDP, Unix stream and Unix datagram sockets; a
//! handler needing a version newer than the host's is refused at start with
//! one line that says so; and the async examples
//! (`timeout-greet`, `ticker`, `chat-async`, in Rust and Python) wait on
//! their client and a timer at once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::{Duration, Instant};

use crate::fixtures::{
    CHAT_ASYNC, CONTRACT_0_2_0, CONTRACT_0_2_1, CONTRACT_0_2_2, CONTRACT_0_2_3, ECHO, ECHO_STREAMS,
    GREET, LEGACY, TICKER, TIMEOUT_GREET,
};
use crate::support::{Server, exchange_line, pattern, read_to_end, round_trip};
use crate::transports::{udp_client, udp_exchange};

/// A scratch directory for socket files.
fn socket_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wasmserve-contract")
        .tempdir()
        .expect("temp dir")
}

/// Echo over all four transports from one server running `args`.
fn check_echo_everywhere(args: &[&str]) {
    let dir = socket_dir();
    let stream_path = dir.path().join("echo.sock");
    let dgram_path = dir.path().join("echo-dgram.sock");
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--tcp",
        "0",
        "--udp",
        "0",
        "--unix",
        stream_path.to_str().expect("utf-8"),
        "--unix-dgram",
        dgram_path.to_str().expect("utf-8"),
    ]);
    let server = Server::start_with(&all, 4);
    let label = args.join(" ");

    let data = pattern(256 * 1024, 3);
    assert!(
        round_trip(server.connect(), data.clone()) == data,
        "{label}: tcp"
    );
    let mut lines = BufReader::new(server.connect());
    for n in 0..20 {
        let line = format!("line {n}");
        assert_eq!(
            exchange_line(&mut lines, &line),
            format!("{line}\n"),
            "{label}"
        );
    }

    let client = udp_client(&server.addrs[1]);
    assert_eq!(
        udp_exchange(&client, b"one datagram"),
        b"one datagram",
        "{label}: udp"
    );
    assert_eq!(
        udp_exchange(&client, &data[..3000]),
        &data[..3000],
        "{label}: udp"
    );

    let mut unix = UnixStream::connect(&stream_path).expect("connect unix");
    unix.write_all(&data[..100_000]).expect("send unix");
    unix.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut echoed = Vec::new();
    unix.read_to_end(&mut echoed).expect("read unix");
    assert!(echoed == data[..100_000], "{label}: unix stream");

    let client_path = dir.path().join("client.sock");
    let client = UnixDatagram::bind(&client_path).expect("bind unix client");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client
        .send_to(b"unix datagram", &dgram_path)
        .expect("send unix datagram");
    let mut buf = [0u8; 256];
    let len = client.recv(&mut buf).expect("unix datagram reply");
    assert_eq!(&buf[..len], b"unix datagram", "{label}: unix datagram");
    assert!(!server.log_text().contains("handler failure"), "{label}");
}

#[test]
fn the_start_up_line_names_each_handlers_contract() {
    for (handler, contract) in [
        (LEGACY, "contract=\"0.1.1\""),
        (CONTRACT_0_2_0, "contract=\"0.2.0\""),
        (CONTRACT_0_2_1, "contract=\"0.2.1\""),
        (CONTRACT_0_2_2, "contract=\"0.2.2\""),
        (CONTRACT_0_2_3, "contract=\"0.2.3\""),
        (ECHO_STREAMS, "contract=\"0.2.4\""),
    ] {
        Server::start(handler, &[]).wait_for_log(&["service started", contract]);
    }
}

#[test]
fn old_and_new_handlers_echo_over_every_transport() {
    check_echo_everywhere(&["--handler", LEGACY]);
    check_echo_everywhere(&["--handler", CONTRACT_0_2_0]);
    check_echo_everywhere(&["--handler", CONTRACT_0_2_1]);
    check_echo_everywhere(&["--handler", CONTRACT_0_2_2]);
    check_echo_everywhere(&["--handler", CONTRACT_0_2_3]);
    check_echo_everywhere(&["--handler", ECHO]);
    check_echo_everywhere(&["--handler", ECHO_STREAMS]);
}

#[test]
fn old_and_new_handlers_greet_over_tcp_udp_and_unix() {
    for args in [
        vec!["--handler", LEGACY, "--set", "role=greet"],
        vec!["--handler", CONTRACT_0_2_0, "--set", "role=greet"],
        vec!["--handler", CONTRACT_0_2_1, "--set", "role=greet"],
        vec!["--handler", CONTRACT_0_2_2, "--set", "role=greet"],
        vec!["--handler", CONTRACT_0_2_3, "--set", "role=greet"],
        vec!["--handler", GREET],
    ] {
        let dir = socket_dir();
        let path = dir.path().join("greet.sock");
        let mut all = args.clone();
        all.extend([
            "--set",
            "greeting=hello there",
            "--tcp",
            "0",
            "--udp",
            "0",
            "--unix",
            path.to_str().expect("utf-8"),
        ]);
        let server = Server::start_with(&all, 3);
        assert_eq!(read_to_end(server.connect()), b"hello there", "{args:?}");
        let client = udp_client(&server.addrs[1]);
        assert_eq!(udp_exchange(&client, b"hi"), b"hello there", "{args:?}");
        let mut unix = UnixStream::connect(&path).expect("connect unix");
        let mut greeting = Vec::new();
        unix.read_to_end(&mut greeting).expect("read unix");
        assert_eq!(greeting, b"hello there", "{args:?}");
    }
}

/// Reads one line, failing the test after 10 s.
fn line_of(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a line from the server");
    line
}

fn connect_lines(server: &Server) -> BufReader<TcpStream> {
    let stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    BufReader::new(stream)
}

/// `timeout-greet` answers a prompt reply with `hello NAME`, and silence
/// with `too slow, bye` once the timeout has passed — even under a CPU
/// budget shorter than the wait, as waiting is not CPU time; over UDP it
/// answers the name a datagram carries.
pub(crate) fn check_timeout_greet(handler: &str) {
    let server = Server::start(handler, &["--set", "timeout=1.5", "--max-cpu", "100ms"]);
    let mut quick = connect_lines(&server);
    assert_eq!(line_of(&mut quick), "what is your name?\n");
    quick.get_mut().write_all(b"Ada\n").expect("send name");
    assert_eq!(line_of(&mut quick), "hello Ada\n");

    let mut slow = connect_lines(&server);
    assert_eq!(line_of(&mut slow), "what is your name?\n");
    let asked = Instant::now();
    assert_eq!(line_of(&mut slow), "too slow, bye\n");
    assert!(
        asked.elapsed() >= Duration::from_millis(1400),
        "answered before the timeout"
    );
    assert!(!server.log_text().contains("handler failure"));

    // Over UDP the same async handler answers a datagram with two: the
    // prompt, then the greeting for the name the datagram carried.
    let server = Server::start_with(&["--handler", handler, "--udp", "0"], 1);
    let client = udp_client(&server.addrs[0]);
    assert_eq!(udp_exchange(&client, b"Ada\n"), b"what is your name?\n");
    let mut buf = [0u8; 256];
    let len = client.recv(&mut buf).expect("the second datagram");
    assert_eq!(&buf[..len], b"hello Ada\n");
}

#[test]
fn timeout_greet_races_a_read_and_a_timer() {
    check_timeout_greet(TIMEOUT_GREET);
}

/// `ticker` sends `tick N` lines in order while echoing what the client
/// sends, interleaved, until the client closes.
pub(crate) fn check_ticker(handler: &str) {
    let server = Server::start(handler, &["--set", "interval=0.1"]);
    let mut reader = connect_lines(&server);
    let mut ticks = 0;
    let mut echoed = Vec::new();
    for n in 0..5 {
        reader
            .get_mut()
            .write_all(format!("echo {n}\n").as_bytes())
            .expect("send");
        // Read until this line comes back, counting the ticks between.
        loop {
            let line = line_of(&mut reader);
            if let Some(count) = line.strip_prefix("tick ") {
                ticks += 1;
                assert_eq!(count.trim(), ticks.to_string(), "ticks in order");
            } else {
                echoed.push(line);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let expected: Vec<String> = (0..5).map(|n| format!("echo {n}\n")).collect();
    assert_eq!(echoed, expected);
    // A tick came between the echoes (each pause is longer than a period).
    assert!(ticks >= 3, "only {ticks} ticks");
    drop(reader);
    // A graceful stop waits for the request: it must end without failure.
    let mut server = server;
    server.stop("TERM", Duration::from_secs(10));
    assert!(
        server.log_text().contains("failures=none"),
        "{}",
        server.log_text()
    );
}

#[test]
fn ticker_is_full_duplex() {
    check_ticker(TICKER);
}

#[test]
fn chat_async_answers_like_chat_and_nudges_a_silent_client() {
    let server = Server::start(CHAT_ASYNC, &["--set", "nudge=0.5"]);
    let mut reader = connect_lines(&server);
    reader.get_mut().write_all(b"hi there\n").expect("send");
    assert_eq!(line_of(&mut reader), "you said: hi there\n");
    // Silence: one nudge, not more.
    assert_eq!(line_of(&mut reader), "still there?\n");
    reader.get_mut().write_all(b"yes\n").expect("send");
    assert_eq!(line_of(&mut reader), "you said: yes\n");
    server.wait_for_log(&["wrote: yes"]);
}

/// A handler built against a contract newer than the host's is refused at
/// start, in one line naming the version and the way out.
#[test]
fn a_handler_needing_a_newer_contract_is_refused_naming_the_version() {
    let output = std::process::Command::new(crate::support::WASMSERVE)
        .args(["--handler", crate::fixtures::CONTRACT_NEXT, "--tcp", "0"])
        .output()
        .expect("run wasmserve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        error.contains("needs contract 0.2.5")
            && error.contains("wasmserve:handler/types@0.2.5")
            && error.contains("up to 0.2.4: upgrade wasmserve"),
        "{stderr}"
    );
}

/// `wasmserve check` tells the operator which contract a handler was built
/// against and which optional parts of the host it imports.
#[test]
fn check_names_the_contract_and_the_optional_imports_a_handler_uses() {
    use crate::fixtures::{CHATROOM, PROXY, TCPCLIENT, WHOAMI};
    for (handler, expected) in [
        (ECHO, "contract 0.2.4, uses nothing optional)"),
        (LEGACY, "contract 0.1.1, uses nothing optional)"),
        (CONTRACT_0_2_0, "contract 0.2.0, uses nothing optional)"),
        (CHATROOM, "contract 0.2.4, uses keyvalue, channels)"),
        (TCPCLIENT, "contract 0.2.4, uses sockets)"),
        (WHOAMI, "contract 0.2.4, uses tls)"),
        (PROXY, "contract 0.2.4, uses keyvalue, hand-off)"),
    ] {
        let output = std::process::Command::new(crate::support::WASMSERVE)
            .args(["check", "--handler", handler, "--tcp", "0"])
            .output()
            .expect("run wasmserve check");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.trim_end().ends_with(expected), "{handler}: {stdout}");
    }
}

/// The SDK's blocking and async requests share their names: `read_exact`,
/// `payload`, `reply` and `echo` in an async handler, `echo` in a blocking
/// one, behave as documented.
#[test]
fn the_blocking_and_async_requests_share_read_exact_payload_reply_and_echo() {
    use crate::fixtures::{AIO_VOCABULARY, FAULTY};
    let server = Server::start_with(
        &["--handler", AIO_VOCABULARY, "--tcp", "0", "--udp", "0"],
        2,
    );
    // A 2-byte length, the frame, then the rest.
    let answer = round_trip(server.connect(), b"\0\x05hello and the rest".to_vec());
    assert_eq!(answer, b"HELLO and the rest");
    let client = udp_client(&server.addrs[1]);
    assert_eq!(udp_exchange(&client, b"one datagram"), b"ONE DATAGRAM");

    let blocking = Server::start(FAULTY, &[]);
    let mut stream = blocking.connect();
    stream.write_all(b"echo-rest\n").expect("command");
    std::thread::sleep(Duration::from_millis(100));
    stream.write_all(b"abc").expect("data");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("answer");
    assert_eq!(answer, b"abcechoed 3\n");
}
