//! Outbound connections: denied by default, opened by `--allow-connect`;
//! the `tcpclient` and `proxy` examples against real upstream servers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::fixtures::{FAULTY, PROXY, TCPCLIENT, TCPCLIENT_PY};
use crate::support::{Server, descriptors, exchange_line, pattern};

/// A server on a free loopback port that gives each connection to
/// `serve` on a thread of its own. Runs until the test process ends.
pub(crate) fn upstream(serve: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || serve(stream));
        }
    });
    port
}

/// A line server: answers `upstream says LINE`.
fn line_upstream() -> u16 {
    upstream(|stream| {
        let mut out = stream.try_clone().expect("clone");
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if out
                .write_all(format!("upstream says {line}\n").as_bytes())
                .is_err()
            {
                return;
            }
        }
    })
}

/// An echo server that passes the client's half-close on.
pub(crate) fn echo_upstream() -> u16 {
    upstream(|stream| {
        let mut out = stream.try_clone().expect("clone");
        let mut input = stream;
        let _ = std::io::copy(&mut input, &mut out);
        let _ = out.shutdown(Shutdown::Write);
    })
}

/// A port nothing listens on.
pub(crate) fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A port whose listener never accepts and whose accept queue is full, so
/// a connect to it gets no answer (its SYNs are dropped) until the kernel
/// gives up, about two minutes later. Keep the returned sockets alive.
pub(crate) fn unanswering_port() -> (u16, Vec<socket2::Socket>) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    listener.bind(&any.into()).expect("bind");
    listener.listen(0).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let port = addr
        .as_socket()
        .map(|addr| addr.port())
        .expect("an IP port");
    let mut held = vec![listener];
    // The first connect fills the queue; the next ones already hang.
    for _ in 0..2 {
        let filler = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let _ = filler.connect_timeout(&addr, Duration::from_millis(200));
        held.push(filler);
    }
    (port, held)
}

#[test]
fn a_connect_that_gets_no_answer_fails_at_the_connect_timeout() {
    let (silent, _held) = unanswering_port();
    let server = Server::start_with_metrics(
        FAULTY,
        &[
            "--allow-connect",
            &format!("127.0.0.1:{silent}"),
            "--connect-timeout",
            "300ms",
        ],
    );
    let mut client = BufReader::new(server.connect());
    let started = Instant::now();
    let reply = exchange_line(&mut client, &format!("connect {silent}"));
    assert!(
        reply.starts_with("denied: ") && reply.to_lowercase().contains("timed out"),
        "{reply}"
    );
    // Not the kernel's two minutes; and the guest goes on serving.
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(exchange_line(&mut client, "still here"), "still here\n");
    let (_, body) = crate::observing::fetch_metrics(&server.addrs[1], None);
    let line = "wasmserve_outbound_connections_total{service=\"faulty.wasm\",result=\"timeout\"} 1";
    assert!(body.contains(line), "{line} missing from:\n{body}");
}

#[test]
fn tcpclient_relays_lines_to_an_allowed_upstream() {
    relays_lines(TCPCLIENT);
}

#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "componentize-py could not be installed or run here (tests/build.rs printed why)"
)]
fn the_python_tcpclient_relays_lines_too() {
    relays_lines(TCPCLIENT_PY);
}

/// `handler` (a tcpclient) relays two lines to an allowed line server.
fn relays_lines(handler: &str) {
    relays_two_lines(handler, false);
}

/// Starts `handler` (a tcpclient; with `/metrics` if `metrics`) in front of
/// an allowed line server, relays two lines through it, and returns the
/// server and the upstream's address.
fn relays_two_lines(handler: &str, metrics: bool) -> (Server, String) {
    let upstream = format!("127.0.0.1:{}", line_upstream());
    let setting = format!("upstream={upstream}");
    let mut args = vec!["--handler", handler, "--tcp", "0"];
    args.extend(["--set", &setting, "--allow-connect", &upstream]);
    if metrics {
        args.extend(["--metrics", "0"]);
    }
    let server = Server::start_with(&args, 1 + usize::from(metrics));
    let mut client = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut client, "hello"), "upstream says hello\n");
    assert_eq!(exchange_line(&mut client, "again"), "upstream says again\n");
    drop(client);
    (server, upstream)
}

#[test]
fn handlers_connect_nowhere_by_default_and_the_refusal_is_logged_once() {
    refused_in_words(TCPCLIENT);
}

#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "componentize-py could not be installed or run here (tests/build.rs printed why)"
)]
fn a_python_handler_is_refused_in_words_too() {
    refused_in_words(TCPCLIENT_PY);
}

/// `handler` (a line relay) without `--allow-connect`: the host refuses and
/// logs it once in the connection's span, and the handler's own error says
/// "access denied" in words, not as WASI's errno 2 (which reads as "no such
/// file" to a Linux user).
fn refused_in_words(handler: &str) {
    let upstream = format!("127.0.0.1:{}", line_upstream());
    let server = Server::start(handler, &["--set", &format!("upstream={upstream}")]);
    let mut client = BufReader::new(server.connect());
    client.get_mut().write_all(b"hello\n").expect("send");
    let mut reply = String::new();
    assert_eq!(client.read_line(&mut reply).unwrap_or(0), 0, "{reply}");
    let line = server.wait_for_log(&["outbound refused", "has no --allow-connect"]);
    assert!(
        line.contains("conn{id=1"),
        "not in the connection's span: {line}"
    );
    server.wait_for_count("outbound refused", 1);
    let failure = server.wait_for_log(&["request ended", "cannot connect to"]);
    assert!(
        failure.contains("access denied") && !failure.contains("os error"),
        "{failure}"
    );
}

#[test]
fn only_the_listed_addresses_and_count_are_granted_and_no_guest_listens() {
    let (allowed, other) = (line_upstream(), line_upstream());
    let server = Server::start(
        FAULTY,
        &[
            "--allow-connect",
            &format!("127.0.0.1:{allowed}"),
            "--max-outbound",
            "3",
        ],
    );
    let mut client = BufReader::new(server.connect());
    let other_reply = exchange_line(&mut client, &format!("connect {other}"));
    assert!(other_reply.starts_with("denied: "), "{other_reply}");
    let mut client = BufReader::new(server.connect());
    assert_eq!(
        exchange_line(&mut client, &format!("connect-many {allowed} 5")),
        "connected 3 of 5\n"
    );
    let listen = exchange_line(&mut client, "listen");
    assert!(listen.starts_with("denied: "), "{listen}");
    server.wait_for_log(&["outbound refused", "more than 3 sockets in one request"]);
}

#[test]
fn udp_goes_only_to_allowed_addresses() {
    let echo = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let allowed = echo.local_addr().expect("addr").port();
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok((len, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..len], from);
        }
    });
    let other = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let other_port = other.local_addr().expect("addr").port();
    let server = Server::start(
        FAULTY,
        &["--allow-connect", &format!("127.0.0.1:{allowed}")],
    );
    let mut client = BufReader::new(server.connect());
    assert_eq!(
        exchange_line(&mut client, &format!("udp {allowed}")),
        "udp got ping\n"
    );
    let refused = exchange_line(&mut client, &format!("udp {other_port}"));
    assert!(refused.starts_with("denied: "), "{refused}");
    other
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    assert!(
        other.recv_from(&mut [0u8; 64]).is_err(),
        "a datagram got out"
    );
}

/// Sends `data` to `addr` while reading what comes back, until the end
/// (the echo upstream sends it all back, then the end); what came back.
fn through(addr: SocketAddr, data: Vec<u8>) -> Vec<u8> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let sender = thread::spawn(move || {
        // A resetting upstream may end the connection before all is sent.
        let _ = writer.write_all(&data);
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut echoed = Vec::new();
    let mut reader = stream;
    let _ = reader.read_to_end(&mut echoed);
    sender.join().expect("sender");
    echoed
}

fn proxy(upstreams: &[u16]) -> Server {
    let list: Vec<String> = upstreams.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut args = vec![
        "--set".to_owned(),
        format!("upstreams={}", list.join(",")),
        "--max-connections-per-source".to_owned(),
        "1000".to_owned(),
    ];
    for upstream in &list {
        args.push("--allow-connect".to_owned());
        args.push(upstream.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(PROXY, &args)
}

#[test]
fn the_proxy_carries_4_mib_each_way_and_passes_half_closes_on() {
    let server = proxy(&[echo_upstream(), echo_upstream()]);
    let transfers: Vec<_> = (0..4u64)
        .map(|seed| {
            let addr = server.addr();
            thread::spawn(move || {
                let data = pattern(4 * 1024 * 1024, seed);
                assert!(
                    through(addr, data.clone()) == data,
                    "a 4 MiB transfer came back different"
                );
            })
        })
        .collect();
    for transfer in transfers {
        transfer.join().expect("a transfer failed");
    }
}

#[test]
fn the_proxy_serves_200_connections_at_once_and_survives_bad_upstreams() {
    // One upstream refuses (nothing listens), one resets every connection,
    // two echo: every connection still gets its bytes back or a clean end.
    let resetting = upstream(|stream| {
        let socket = socket2::SockRef::from(&stream);
        let _ = socket.set_linger(Some(Duration::ZERO));
        drop(stream); // RST
    });
    let server = proxy(&[closed_port(), echo_upstream(), echo_upstream()]);
    let clients: Vec<_> = (0..200u64)
        .map(|seed| {
            let addr = server.addr();
            thread::spawn(move || {
                let data = pattern(16 * 1024, seed);
                through(addr, data.clone()) == data
            })
        })
        .collect();
    let whole = clients
        .into_iter()
        .map(|client| client.join().expect("a client failed"))
        .filter(|whole| *whole)
        .count();
    assert_eq!(whole, 200, "connections that got all their bytes back");
    // The resetting upstream: the client's connection ends, the proxy
    // serves on.
    let with_reset = proxy(&[resetting]);
    assert!(through(with_reset.addr(), b"lost".to_vec()).is_empty());
    assert_eq!(
        through(server.addr(), b"still here".to_vec()),
        b"still here"
    );
}

#[test]
fn metrics_count_connections_and_bytes_per_upstream() {
    let (server, upstream) = relays_two_lines(TCPCLIENT, true);
    let (_, body) = crate::observing::fetch_metrics(&server.addrs[1], None);
    for line in [
        "wasmserve_outbound_connections_total{service=\"tcpclient.wasm\",result=\"allowed\"} 1"
            .to_owned(),
        "wasmserve_outbound_connections_total{service=\"tcpclient.wasm\",result=\"refused\"} 0"
            .to_owned(),
        format!(
            "wasmserve_upstream_bytes_total{{service=\"tcpclient.wasm\",upstream=\"{upstream}\",direction=\"out\"}} 12"
        ),
        format!(
            "wasmserve_upstream_bytes_total{{service=\"tcpclient.wasm\",upstream=\"{upstream}\",direction=\"in\"}} 40"
        ),
    ] {
        assert!(body.contains(&line), "{line} missing from:\n{body}");
    }
}

/// Five clients at once each ask the handler to create `count` UDP sockets
/// and hold them for a second and a half; returns the replies and the most
/// descriptors the server held meanwhile.
fn hoard_sockets(server: &Server, count: usize) -> (Vec<String>, usize) {
    let hoarders: Vec<_> = (0..5)
        .map(|_| {
            let mut client = BufReader::new(server.connect());
            thread::spawn(move || {
                exchange_line(&mut client, &format!("hoard-sockets {count} 1500"))
            })
        })
        .collect();
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < deadline {
        most = most.max(descriptors(server));
        thread::sleep(Duration::from_millis(50));
    }
    let replies = hoarders
        .into_iter()
        .map(|hoarder| hoarder.join().expect("hoarder"))
        .collect();
    (replies, most)
}

#[test]
fn a_handler_without_allow_connect_creates_no_socket_at_all() {
    // The attack: thousands of unconnected sockets per request, before any
    // address is checked, until the process has no descriptor left.
    let server = Server::start_with_metrics(FAULTY, &[]);
    let baseline = descriptors(&server);
    let (replies, most) = hoard_sockets(&server, 4000);
    for reply in &replies {
        assert!(reply.starts_with("created 0 of 4000: "), "{reply}");
    }
    assert!(
        most <= baseline + 5 + 4,
        "{most} descriptors held, {baseline} before (5 clients)"
    );
    server.wait_for_log(&["outbound refused", "UDP socket", "has no --allow-connect"]);
    let metrics = crate::observing::scrape(&server.addrs[1]);
    assert!(
        metrics.contains(
            "wasmserve_outbound_connections_total{service=\"faulty.wasm\",result=\"refused\"} 20000"
        ),
        "every refusal counted:\n{metrics}"
    );
}

#[test]
fn a_request_creates_at_most_max_outbound_sockets_and_the_listener_keeps_accepting() {
    let server = Server::start(FAULTY, &["--allow-connect", "127.0.0.1:9"]);
    let baseline = descriptors(&server);
    let (replies, most) = hoard_sockets(&server, 100);
    for reply in &replies {
        assert!(reply.starts_with("created 8 of 100: "), "{reply}");
    }
    assert!(
        most <= baseline + 5 + 5 * 8 + 4,
        "{most} descriptors held, {baseline} before (5 clients, 8 sockets each)"
    );
    let mut bystander = BufReader::new(server.connect());
    assert_eq!(
        exchange_line(&mut bystander, "still served"),
        "still served\n"
    );
    server.wait_for_log(&["outbound refused", "more than 8 sockets in one request"]);
    // The sockets went with their requests.
    let deadline = Instant::now() + Duration::from_secs(5);
    while descriptors(&server) > baseline + 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(descriptors(&server) <= baseline + 2);
}

#[test]
fn every_odd_form_of_an_address_is_refused_as_access_denied_and_counted() {
    let port = line_upstream();
    let allowed = format!("127.0.0.1:{port}");
    let server = Server::start_with_metrics(FAULTY, &["--allow-connect", &allowed]);
    // Names and forms a standard library hands to the resolver, and forms
    // wasmtime-wasi rejects before the allow-list is asked.
    let forms = [
        format!("localhost:{port}"),
        format!("127.1:{port}"),
        format!("0x7f000001:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::]:{port}"),
        format!("[::ffff:127.0.0.2]:{port}"),
        format!("255.255.255.255:{port}"),
        "127.0.0.1:0".to_owned(),
    ];
    for form in &forms {
        let mut client = BufReader::new(server.connect());
        let reply = exchange_line(&mut client, &format!("connect-to {form}"));
        assert!(reply.starts_with("denied: "), "{form}: {reply}");
        assert!(
            reply.to_lowercase().contains("permission denied"),
            "{form} is refused as access-denied: {reply}"
        );
    }
    server.wait_for_count("outbound refused", forms.len());
    let metrics = crate::observing::scrape(&server.addrs[1]);
    let refused = format!(
        "wasmserve_outbound_connections_total{{service=\"faulty.wasm\",result=\"refused\"}} {}",
        forms.len()
    );
    assert!(metrics.contains(&refused), "{refused} missing:\n{metrics}");
    // The allowed address itself still connects.
    let mut client = BufReader::new(server.connect());
    assert_eq!(
        exchange_line(&mut client, &format!("connect-to {allowed}")),
        "connected\n"
    );
}

#[test]
fn a_request_sends_no_more_datagrams_than_its_budget() {
    // A sink that counts what arrives.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sink.local_addr().expect("addr").port();
    sink.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let counter = thread::spawn(move || {
        let (mut datagrams, mut bytes) = (0u64, 0u64);
        let mut buf = [0u8; 2048];
        while let Ok(len) = sink.recv(&mut buf) {
            datagrams += 1;
            bytes += len as u64;
        }
        (datagrams, bytes)
    });
    let server =
        Server::start_with_metrics(FAULTY, &["--allow-connect", &format!("127.0.0.1:{port}")]);
    let mut client = BufReader::new(server.connect());
    // One line asks for 280 MB; the default budget is 1,000 datagrams and
    // 1 MiB per request: 748 datagrams of 1,400 bytes.
    let reply = exchange_line(&mut client, &format!("udp-flood {port} 200000"));
    assert!(reply.starts_with("sent 748 of 200000: "), "{reply}");
    assert!(
        reply.to_lowercase().contains("permission denied"),
        "{reply}"
    );
    let mut bystander = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut bystander, "served"), "served\n");
    let (datagrams, bytes) = counter.join().expect("sink");
    assert!(
        datagrams <= 748 && bytes <= 1024 * 1024,
        "{datagrams} datagrams, {bytes} bytes arrived"
    );
    server.wait_for_log(&["outbound refused", "--max-outbound-datagrams"]);
    let metrics = crate::observing::scrape(&server.addrs[1]);
    for line in [
        "wasmserve_outbound_datagrams_total{service=\"faulty.wasm\",result=\"sent\"} 748",
        "wasmserve_outbound_datagrams_total{service=\"faulty.wasm\",result=\"refused\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
}
