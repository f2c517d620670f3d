//! `request.hand-off` (contract 0.2.2): the handler chooses an upstream,
//! the host relays. Driven through the `faulty` fixture's hand-off
//! commands and the `proxy` example, against real upstream servers: what
//! goes ahead, what stays the handler's until it returns, every refusal in
//! words, and the relay's own limits (idle timeout, clients that never
//! read) with the host's memory and descriptors coming back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::fixtures::{FAULTY, PROXY};
use crate::outbound::{closed_port, echo_upstream, upstream};
use crate::support::{Server, descriptors, exchange_line, rss_kib, within_5s};

/// Reads one line (`""` at end of stream).
fn next_line(client: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    let _ = client.read_line(&mut line);
    line
}

#[test]
fn a_handed_off_connection_gets_first_then_the_relay_and_the_half_close() {
    let echo = echo_upstream();
    let server = Server::start(FAULTY, &["--allow-connect", &format!("127.0.0.1:{echo}")]);
    let mut client = BufReader::new(server.connect());
    // The handler answers itself first, then the upstream sees `first`
    // ahead of the client's own bytes.
    assert_eq!(
        exchange_line(
            &mut client,
            &format!("hand-off 127.0.0.1:{echo} hello upstream")
        ),
        "handed off\n"
    );
    assert_eq!(next_line(&mut client), "hello upstream\n");
    assert_eq!(exchange_line(&mut client, "ping"), "ping\n");
    // The client's half-close reaches the upstream, whose own end comes back.
    client
        .get_mut()
        .shutdown(Shutdown::Write)
        .expect("half close");
    assert_eq!(next_line(&mut client), "", "end of stream passed back");
    server.wait_for_log(&["relay ended: both sides closed"]);
    // The relayed bytes are the request's: 5 of "ping\n" and the command's.
    let served = server.wait_for_log(&["served", "outcome=\"ok\""]);
    assert!(served.contains("bytes_out=31"), "{served}");
}

#[test]
fn every_refused_hand_off_says_why_and_the_request_stays_the_handlers() {
    let echo = echo_upstream();
    let closed = closed_port();
    let server = Server::start_with_metrics(
        FAULTY,
        &[
            "--allow-connect",
            &format!("127.0.0.1:{echo}"),
            "--allow-connect",
            &format!("127.0.0.1:{closed}"),
        ],
    );
    let mut client = BufReader::new(server.connect());
    for (command, expected) in [
        (
            "hand-off 127.0.0.1:1".to_owned(),
            "refused: 127.0.0.1:1 is not in --allow-connect".to_owned(),
        ),
        (
            "hand-off localhost:80".to_owned(),
            "refused: \"localhost:80\" is not an IP:PORT".to_owned(),
        ),
        (
            format!("hand-off 127.0.0.1:{closed}"),
            format!("refused: upstream refused: 127.0.0.1:{closed}"),
        ),
    ] {
        let reply = exchange_line(&mut client, &command);
        assert!(reply.starts_with(&expected), "{command}: {reply}");
        // Still the handler's: it answers the next line itself.
        assert_eq!(exchange_line(&mut client, "still here"), "still here\n");
    }
    // A second hand-off is refused; the first one stands.
    assert_eq!(
        exchange_line(&mut client, &format!("hand-off-twice 127.0.0.1:{echo}")),
        "second: this request was handed off already\n"
    );
    assert_eq!(exchange_line(&mut client, "relayed"), "relayed\n");
    let (_, body) = crate::observing::fetch_metrics(&server.addrs[1], None);
    for line in [
        "wasmserve_outbound_connections_total{service=\"faulty.wasm\",result=\"refused\"} 1",
        "wasmserve_outbound_connections_total{service=\"faulty.wasm\",result=\"allowed\"} 2",
    ] {
        assert!(body.contains(line), "{line} missing from:\n{body}");
    }
    // A datagram has no connection to hand off.
    let udp = Server::start_with(&["--handler", FAULTY, "--udp", "127.0.0.1:0"], 1);
    let socket = crate::transports::udp_client(&udp.addrs[0]);
    let reply =
        crate::transports::udp_exchange(&socket, format!("hand-off 127.0.0.1:{echo}\n").as_bytes());
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("a datagram cannot be handed off"), "{reply}");
}

/// The relay holds small messages both ways and sends them together when
/// the worker idles. A client sends 8 MiB through the proxy to an echo
/// upstream in 1,000-byte pieces; the upstream starts reading only after a
/// second, and the client too, so held bytes meet full sockets both ways:
/// every byte comes back, in order.
#[test]
fn late_readers_get_every_small_message_through_the_relay_in_order() {
    let echo = upstream(|stream| {
        thread::sleep(Duration::from_secs(1));
        let mut out = stream.try_clone().expect("clone");
        let mut input = stream;
        let _ = std::io::copy(&mut input, &mut out);
        let _ = out.shutdown(Shutdown::Write);
    });
    let target = format!("127.0.0.1:{echo}");
    let server = Server::start(
        PROXY,
        &[
            "--set",
            &format!("upstreams={target}"),
            "--allow-connect",
            &target,
        ],
    );
    let stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let data = crate::support::pattern(8 * 1024 * 1024, 11);
    let mut writer = stream.try_clone().expect("clone stream");
    let sent = data.clone();
    let sender = thread::spawn(move || {
        for piece in sent.chunks(1000) {
            writer.write_all(piece).expect("send");
        }
        writer.shutdown(Shutdown::Write).expect("half close");
    });
    thread::sleep(Duration::from_millis(1500));
    let mut echoed = Vec::new();
    let mut reader = stream;
    reader.read_to_end(&mut echoed).expect("receive");
    sender.join().expect("sender thread");
    assert_eq!(echoed.len(), data.len(), "echoed length");
    assert!(echoed == data, "echoed bytes differ");
}

#[test]
fn a_handler_that_fails_after_handing_off_relays_nothing() {
    let echo = echo_upstream();
    let server = Server::start(FAULTY, &["--allow-connect", &format!("127.0.0.1:{echo}")]);
    let mut client = BufReader::new(server.connect());
    assert_eq!(
        exchange_line(&mut client, &format!("hand-off-fail 127.0.0.1:{echo}")),
        "failing\n"
    );
    // Nothing relayed: whatever the client sends, the connection just ends.
    let _ = client.get_mut().write_all(b"anyone there?\n");
    assert_eq!(next_line(&mut client), "");
    server.wait_for_log(&["failed after handing off"]);
}

#[test]
fn a_relay_that_moves_nothing_ends_at_the_idle_timeout() {
    let echo = echo_upstream();
    let server = Server::start(
        FAULTY,
        &[
            "--allow-connect",
            &format!("127.0.0.1:{echo}"),
            "--idle-timeout",
            "1s",
        ],
    );
    let mut client = BufReader::new(server.connect());
    assert_eq!(
        exchange_line(&mut client, &format!("hand-off 127.0.0.1:{echo}")),
        "handed off\n"
    );
    assert_eq!(exchange_line(&mut client, "one"), "one\n");
    let silent = Instant::now();
    client
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    assert_eq!(next_line(&mut client), "", "closed by the host");
    let waited = silent.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    server.wait_for_log(&["relay ended: nothing moved either way for --idle-timeout"]);
}

/// An upstream that writes 64 KiB blocks until its client goes.
fn flooding_upstream() -> u16 {
    upstream(|mut stream| {
        let block = vec![b'f'; 64 * 1024];
        while stream.write_all(&block).is_ok() {}
    })
}

/// Hostile: 100 clients have the proxy relay a flooding upstream to them
/// and never read. Each relay keeps at most one chunk the client does not
/// take; a bystander is served meanwhile; when they go, the host's memory
/// and descriptors come back.
#[test]
fn relays_to_clients_that_never_read_hold_one_chunk_each_and_everything_returns() {
    let flood = flooding_upstream();
    let echo = echo_upstream();
    let server = Server::start(
        PROXY,
        &[
            "--set",
            &format!("upstreams=127.0.0.1:{flood}"),
            "--allow-connect",
            &format!("127.0.0.1:{flood}"),
            "--max-connections-per-source",
            "1000",
        ],
    );
    let bystander = Server::start(
        PROXY,
        &[
            "--set",
            &format!("upstreams=127.0.0.1:{echo}"),
            "--allow-connect",
            &format!("127.0.0.1:{echo}"),
        ],
    );
    let (rss_before, fds_before) = (rss_kib(&server), descriptors(&server));
    let hoarders: Vec<TcpStream> = (0..100).map(|_| server.connect()).collect();
    // Let every relay fill the sockets' buffers and stall on its client.
    thread::sleep(Duration::from_secs(2));
    let held = rss_kib(&server).saturating_sub(rss_before);
    assert!(
        held < 24 * 1024,
        "100 stalled relays grew the host by {held} KiB"
    );
    let mut other = BufReader::new(bystander.connect());
    assert_eq!(exchange_line(&mut other, "bystander"), "bystander\n");
    // One of them does read: its relay is still flowing.
    let mut reader = hoarders
        .first()
        .expect("a hoarder")
        .try_clone()
        .expect("clone");
    let mut buf = vec![0; 256 * 1024];
    reader.read_exact(&mut buf).expect("the flood still flows");
    assert!(buf.iter().all(|byte| *byte == b'f'));
    drop((hoarders, reader));
    within_5s("the relays' descriptors come back", || {
        descriptors(&server) <= fds_before + 2
    });
    let after = rss_kib(&server).saturating_sub(rss_before);
    assert!(
        after < 16 * 1024,
        "{after} KiB still held after the clients went"
    );
}

/// The Python twin of `proxy` hands off through the Python SDK: it skips a
/// refusing upstream and the relay carries a transfer both ways.
#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "componentize-py could not be installed or run here (tests/build.rs printed why)"
)]
fn the_python_proxy_hands_off_too() {
    let (echo, closed) = (echo_upstream(), closed_port());
    let server = Server::start(
        crate::fixtures::PROXY_PY,
        &[
            "--set",
            &format!("upstreams=127.0.0.1:{closed},127.0.0.1:{echo}"),
            "--allow-connect",
            &format!("127.0.0.1:{closed}"),
            "--allow-connect",
            &format!("127.0.0.1:{echo}"),
        ],
    );
    for seed in 0..2 {
        let data = crate::support::pattern(256 * 1024, seed);
        let back = crate::support::round_trip(server.connect(), data.clone());
        assert!(back == data, "a transfer came back different");
    }
    server.wait_for_log(&["skipped", "Connection refused"]);
}

/// TLS termination and hand-off compose: the host terminates TLS, the
/// `proxy` handler hands the plaintext to a plain upstream, and the relay
/// carries it both ways (a TLS-terminating L4 proxy).
#[test]
fn a_tls_connection_is_handed_off_as_plaintext() {
    let pki = crate::pki::Pki::new();
    let echo = echo_upstream();
    let (upstreams, allowed) = (
        format!("upstreams=127.0.0.1:{echo}"),
        format!("127.0.0.1:{echo}"),
    );
    let flags = pki.server_flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(["--set", &upstreams, "--allow-connect", &allowed]);
    let server = Server::start(PROXY, &args);
    let mut stream =
        crate::pki::tls_connect(pki.client_config(None, &[]), &server.addrs[0], "localhost")
            .expect("handshake");
    let data = crate::support::pattern(256 * 1024, 11);
    let mut back = vec![0u8; data.len()];
    for (chunk, out) in data.chunks(16 * 1024).zip(back.chunks_mut(16 * 1024)) {
        stream.write_all(chunk).expect("send");
        stream.read_exact(out).expect("receive");
    }
    assert!(back == data, "the relayed echo came back different");
    server.wait_for_log(&["relaying to the upstream the handler chose"]);
}
