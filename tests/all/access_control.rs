//! The gate: access lists, connection rates per source, the PROXY protocol
//! (by hand and behind a real HAProxy). Loopback addresses 127.0.0.2, .3 ...
//! play separate sources.

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::fixtures::{ECHO, WHOAMI};
use crate::support::{Server, closed_by_server, connect_from, exchange_line, first_line};

/// The address of `server`'s listener of `kind` (`tcp`, `udp`, `metrics`).
fn listener<'a>(server: &'a Server, kind: &str) -> &'a str {
    let index = server
        .listening
        .iter()
        .position(|line| line.starts_with(&format!("listening {kind} ")))
        .unwrap_or_else(|| panic!("no {kind} listener"));
    &server.addrs[index]
}

/// The `connections_closed_by_server` count for `reason`.
fn refused(server: &Server, reason: &str) -> u64 {
    let (_, body) = crate::observing::fetch_metrics(listener(server, "metrics"), None);
    let prefix = "wasmserve_connections_closed_by_server_total{service=";
    body.lines()
        .filter(|line| line.starts_with(prefix) && line.contains(&format!("reason=\"{reason}\"")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn served(server: &Server, source: [u8; 4]) -> bool {
    let mut client = BufReader::new(connect_from(source, &server.addrs[0]));
    client.get_mut().write_all(b"hi\n").is_ok() && {
        let mut line = String::new();
        client.read_line(&mut line).is_ok() && line == "hi\n"
    }
}

#[test]
fn deny_wins_over_allow_and_refusals_are_closed_and_counted() {
    let server = Server::start_with_metrics(
        ECHO,
        &[
            "--udp",
            "0",
            "--allow-from",
            "127.0.0.0/30",
            "--deny-from",
            "127.0.0.3",
        ],
    );
    assert!(served(&server, [127, 0, 0, 2]));
    let mut denied = connect_from([127, 0, 0, 3], &server.addrs[0]);
    assert!(closed_by_server(&mut denied), "a denied source was served");
    let mut outside = connect_from([127, 0, 0, 5], &server.addrs[0]);
    assert!(
        closed_by_server(&mut outside),
        "a source outside --allow-from was served"
    );
    assert_eq!(refused(&server, "denied"), 2);
    server.wait_for_log(&[
        "connection refused",
        "not allowed (--allow-from / --deny-from)",
    ]);
    // Datagrams from a denied source get no answer.
    let udp = UdpSocket::bind("127.0.0.3:0").expect("bind");
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    udp.send_to(b"ping", listener(&server, "udp"))
        .expect("send");
    assert!(
        udp.recv_from(&mut [0u8; 16]).is_err(),
        "a denied datagram was answered"
    );
    let allowed = UdpSocket::bind("127.0.0.2:0").expect("bind");
    allowed
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    allowed
        .send_to(b"ping", listener(&server, "udp"))
        .expect("send");
    assert!(allowed.recv_from(&mut [0u8; 16]).is_ok());
}

#[test]
fn a_source_over_its_rate_is_closed_and_others_are_not_hurt() {
    let server = Server::start_with_metrics(ECHO, &["--max-connection-rate", "5/m"]);
    for _ in 0..5 {
        assert!(served(&server, [127, 0, 0, 2]));
    }
    // A flood past the rate: every one closed at once, the log bounded.
    for _ in 0..50 {
        let mut flood = connect_from([127, 0, 0, 2], &server.addrs[0]);
        assert!(closed_by_server(&mut flood));
    }
    assert!(served(&server, [127, 0, 0, 3]), "another source was hurt");
    assert_eq!(refused(&server, "rate"), 50);
    let logged = server
        .log_text()
        .matches("faster than --max-connection-rate")
        .count();
    assert!(
        (1..=10).contains(&logged),
        "{logged} refusal lines for 50 refusals"
    );
}

/// `handler` served with the PROXY protocol from 127.0.0.1 and
/// `per_source` connections per source, behind a real HAProxy sending
/// `send-proxy-v2`; both, and HAProxy's address.
fn behind_haproxy(handler: &str, per_source: &str) -> (Server, crate::haproxy::Haproxy, String) {
    let server = Server::start(
        handler,
        &[
            "--proxy-protocol",
            "127.0.0.1",
            "--max-connections-per-source",
            per_source,
        ],
    );
    let haproxy = crate::haproxy::Haproxy::start(&server.addrs[0], "send-proxy-v2");
    let front = format!("127.0.0.1:{}", haproxy.port);
    (server, haproxy, front)
}

/// Sends `header` then a line to a `whoami` server; its answer.
fn whoami_after(server: &Server, source: [u8; 4], header: &[u8]) -> String {
    let mut stream = connect_from(source, &server.addrs[0]);
    stream.write_all(header).expect("send the header");
    first_line(stream)
}

#[test]
fn a_proxy_protocol_header_gives_the_handler_the_real_client() {
    let server = Server::start_with_metrics(
        WHOAMI,
        &["--proxy-protocol", "127.0.0.1", "--deny-from", "192.0.2.66"],
    );
    let v1 = whoami_after(
        &server,
        [127, 0, 0, 1],
        b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 8100\r\n",
    );
    assert!(v1.contains("peer=198.51.100.7:40000"), "{v1}");
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend([203, 0, 113, 9, 127, 0, 0, 1]);
    v2.extend(41000u16.to_be_bytes());
    v2.extend(8100u16.to_be_bytes());
    let v2_answer = whoami_after(&server, [127, 0, 0, 1], &v2);
    assert!(v2_answer.contains("peer=203.0.113.9:41000"), "{v2_answer}");
    // A health check's LOCAL header: the connection's own address.
    let local = whoami_after(
        &server,
        [127, 0, 0, 1],
        b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00",
    );
    assert!(local.contains("peer=127.0.0.1:"), "{local}");
    // The access lists apply to the client the header names.
    let denied = whoami_after(
        &server,
        [127, 0, 0, 1],
        b"PROXY TCP4 192.0.2.66 127.0.0.1 1 2\r\n",
    );
    assert_eq!(denied, "");
    // Not from a trusted proxy, or without a header: closed, never served.
    let untrusted = whoami_after(
        &server,
        [127, 0, 0, 2],
        b"PROXY TCP4 198.51.100.7 127.0.0.1 1 2\r\n",
    );
    assert_eq!(untrusted, "");
    let no_header = whoami_after(&server, [127, 0, 0, 1], b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(no_header, "");
    assert_eq!(refused(&server, "denied"), 1);
    assert_eq!(refused(&server, "untrusted_proxy"), 1);
    assert_eq!(refused(&server, "bad_proxy_header"), 1);
}

#[test]
fn a_header_trickled_or_withheld_is_given_up_on() {
    let server = Server::start(WHOAMI, &["--proxy-protocol", "127.0.0.1"]);
    let started = Instant::now();
    let mut stalled = connect_from([127, 0, 0, 1], &server.addrs[0]);
    stalled.write_all(b"PROX").expect("send");
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    assert_eq!(first_line(stalled), "");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "held for {:?}",
        started.elapsed()
    );
    // Meanwhile and after, proper clients are served.
    let ok = whoami_after(
        &server,
        [127, 0, 0, 1],
        b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 8100\r\n",
    );
    assert!(ok.contains("peer=198.51.100.7:40000"), "{ok}");
}

#[test]
fn connections_withholding_their_header_cannot_keep_a_balancers_clients_waiting() {
    // A waiting room of 64 (the least there is), and four times as many
    // connections from inside the trusted network that never finish their
    // header: each newcomer closes the one that has waited longest.
    let server = Server::start_with_metrics(
        WHOAMI,
        &["--proxy-protocol", "127.0.0.1", "--max-connections", "4"],
    );
    let mut withholding = Vec::new();
    for _ in 0..256 {
        let mut stream = connect_from([127, 0, 0, 1], &server.addrs[0]);
        stream.write_all(b"PROX").expect("send");
        withholding.push(stream);
    }
    // Honest clients behind the same balancer are served at once, not
    // after the 5 s the withheld headers may take.
    let started = Instant::now();
    for port in 40000..40005 {
        let header = format!("PROXY TCP4 198.51.100.7 127.0.0.1 {port} 8100\r\n");
        let answer = whoami_after(&server, [127, 0, 0, 1], header.as_bytes());
        assert!(answer.contains(&format!("198.51.100.7:{port}")), "{answer}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "honest clients waited {:?}",
        started.elapsed()
    );
    // Every connection closed to make room was counted.
    assert!(
        refused(&server, "shed") >= 256 - 64,
        "{}",
        refused(&server, "shed")
    );
}

#[test]
#[cfg_attr(
    wasmserve_no_haproxy,
    ignore = "haproxy is not installed (Debian package haproxy)"
)]
fn behind_a_real_haproxy_with_send_proxy_v2_the_handler_sees_each_client() {
    let (_server, _haproxy, front) = behind_haproxy(WHOAMI, "2");
    for source in [[127, 0, 0, 2], [127, 0, 0, 3], [127, 0, 0, 4]] {
        let stream = connect_from(source, &front);
        let client = stream.local_addr().expect("addr").to_string();
        let answer = first_line(stream);
        assert!(
            answer.contains(&format!("peer={client} ")),
            "{client}: {answer}"
        );
    }
}

#[test]
#[cfg_attr(
    wasmserve_no_haproxy,
    ignore = "haproxy is not installed (Debian package haproxy)"
)]
fn behind_haproxy_the_per_source_cap_counts_clients_not_the_balancer() {
    let (_server, _haproxy, front) = behind_haproxy(ECHO, "1");
    // Two clients at once through one balancer: each its own source.
    let mut first = BufReader::new(connect_from([127, 0, 0, 2], &front));
    let mut second = BufReader::new(connect_from([127, 0, 0, 3], &front));
    assert_eq!(exchange_line(&mut first, "one"), "one\n");
    assert_eq!(exchange_line(&mut second, "two"), "two\n");
    // A second connection of the first client is over its cap.
    let mut again = connect_from([127, 0, 0, 2], &front);
    assert!(
        closed_by_server(&mut again),
        "the cap did not apply to the client"
    );
    assert_eq!(exchange_line(&mut first, "still"), "still\n");
}

#[test]
fn a_header_naming_no_client_is_screened_as_the_balancer_itself() {
    let server = Server::start_with_metrics(
        WHOAMI,
        &[
            "--proxy-protocol",
            "127.0.0.0/8",
            "--deny-from",
            "127.0.0.3",
        ],
    );
    // The balancer's own connections (v2 LOCAL, v1 UNKNOWN) from a denied
    // address: closed, never served.
    let local = whoami_after(
        &server,
        [127, 0, 0, 3],
        b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00",
    );
    assert_eq!(local, "");
    let unknown = whoami_after(&server, [127, 0, 0, 3], b"PROXY UNKNOWN\r\n");
    assert_eq!(unknown, "");
    // The clients it names are screened as themselves.
    let named = whoami_after(
        &server,
        [127, 0, 0, 3],
        b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 8100\r\n",
    );
    assert!(named.contains("peer=198.51.100.7:40000"), "{named}");
    assert_eq!(refused(&server, "denied"), 2);
}

#[test]
fn a_malformed_header_is_logged_on_one_line() {
    let server = Server::start(WHOAMI, &["--proxy-protocol", "127.0.0.1"]);
    let bad = whoami_after(&server, [127, 0, 0, 1], b"PROXY TCP4 1.2.3.4\r\nX 5 6\r\n");
    assert_eq!(bad, "");
    let line = server.wait_for_log(&["reason=\"bad_proxy_header\""]);
    assert!(!line.contains('\r'), "a raw carriage return in {line:?}");
}
