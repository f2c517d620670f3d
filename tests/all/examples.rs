//! The example handlers (and the SDK helpers they use) over real sockets.

use std::io::{BufReader, Read, Write};
use std::net::Shutdown;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::fixtures::{CHAT, DAYTIME, FRAMED, TIME, UPPERCASE};
use crate::support::{Server, exchange_line, read_to_end};
use crate::transports::{udp_client, udp_exchange};

/// Seconds from 1900 to 1970 (RFC 868).
const SECONDS_1900_TO_1970: u64 = 2_208_988_800;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Checks an RFC 868 answer against the local clock (within 5 s).
fn assert_rfc868_now(answer: &[u8]) {
    let bytes: [u8; 4] = answer.try_into().expect("exactly four bytes");
    let since_1900 = u64::from(u32::from_be_bytes(bytes));
    let expected = (now_unix() + SECONDS_1900_TO_1970) % (1 << 32);
    assert!(
        since_1900.abs_diff(expected) <= 5,
        "{since_1900} is not now ({expected})"
    );
}

#[test]
fn chat_answers_each_line_and_logs_it_with_the_peer() {
    let server = Server::start(CHAT, &[]);
    let stream = server.connect();
    let peer = stream.local_addr().expect("local addr").to_string();
    let mut stream = BufReader::new(stream);
    assert_eq!(exchange_line(&mut stream, "hello"), "you said: hello\n");
    assert_eq!(
        exchange_line(&mut stream, "how are you?"),
        "you said: how are you?\n"
    );
    server.wait_for_log(&[&format!("{peer} wrote: how are you?")]);
    drop(stream);
    server.wait_for_log(&[&format!("{peer} left")]);
}

#[test]
fn chat_takes_its_reply_from_a_setting() {
    let server = Server::start(CHAT, &["--set", "reply=noted"]);
    let mut stream = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut stream, "anything"), "noted\n");
}

#[test]
fn uppercase_answers_in_upper_case() {
    let server = Server::start(UPPERCASE, &[]);
    let mut stream = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut stream, "Hello, World"), "HELLO, WORLD\n");
}

#[test]
fn time_tells_rfc_868_time_over_tcp_and_udp() {
    let server = Server::start_with(&["--handler", TIME, "--tcp", "0", "--udp", "0"], 2);
    assert_rfc868_now(&read_to_end(server.connect()));
    let client = udp_client(&server.addrs[1]);
    assert_rfc868_now(&udp_exchange(&client, b""));
    assert_rfc868_now(&udp_exchange(&client, b"any payload"));
}

#[test]
fn daytime_tells_the_date_in_one_line_over_tcp_and_udp() {
    let server = Server::start_with(&["--handler", DAYTIME, "--tcp", "0", "--udp", "0"], 2);
    let year = 1970 + now_unix() / 31_556_952; // good to a day or so around new year
    for answer in [
        read_to_end(server.connect()),
        udp_exchange(&udp_client(&server.addrs[1]), b"?"),
    ] {
        let text = String::from_utf8(answer).expect("utf-8");
        assert!(text.ends_with(" UTC\r\n"), "{text:?}");
        let words: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(words.len(), 6, "{text:?}");
        assert!(
            words[4].parse::<u64>().is_ok_and(|y| y.abs_diff(year) <= 1),
            "{text:?}"
        );
    }
}

#[test]
fn sdk_line_exact_and_buffered_writer_helpers_work_over_a_connection() {
    let server = Server::start(FRAMED, &[]);
    let mut stream = server.connect();
    // The greeting and the first frame arrive together: read_line must keep
    // the bytes it read ahead for read_exact.
    let mut sent = b"HELLO tester\n".to_vec();
    let bodies: [&[u8]; 3] = [b"first frame", b"", b"x"];
    for body in bodies {
        sent.extend_from_slice(&(body.len() as u32).to_be_bytes());
        sent.extend_from_slice(body);
    }
    stream.write_all(&sent).expect("send");
    stream.shutdown(Shutdown::Write).expect("half close");
    let mut received = Vec::new();
    stream.read_to_end(&mut received).expect("receive");
    let mut expected = b"hi tester\n".to_vec();
    for body in bodies {
        expected.extend_from_slice(&(body.len() as u32).to_be_bytes());
        expected.extend_from_slice(&body.to_ascii_uppercase());
    }
    assert_eq!(received, expected);
}

#[test]
fn sdk_payload_and_reply_serve_a_datagram() {
    let server = Server::start_with(&["--handler", FRAMED, "--udp", "0"], 1);
    let client = udp_client(&server.addrs[0]);
    assert_eq!(udp_exchange(&client, &[7u8; 1000]), b"1000 bytes");
}
