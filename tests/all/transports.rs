//! Every socketserver transport from the same handlers: UDP, Unix stream,
//! Unix datagram, IPv6, several listeners, inherited sockets, max-requests.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use crate::fixtures::{ECHO, GREET, WHOAMI};
use crate::support::{
    Server, WASMSERVE, assert_one_line_error, assert_usage_error, pattern, read_to_end, round_trip,
    run_failing,
};

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn udp_client(server: &str) -> UdpSocket {
    let local = if server.starts_with('[') {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let socket = UdpSocket::bind(local).expect("bind udp client");
    socket.connect(server).expect("connect udp client");
    socket
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("timeout");
    socket
}

pub(crate) fn udp_exchange(socket: &UdpSocket, payload: &[u8]) -> Vec<u8> {
    socket.send(payload).expect("send datagram");
    let mut buf = vec![0u8; 65_536];
    let len = socket.recv(&mut buf).expect("receive datagram");
    buf.truncate(len);
    buf
}

/// A scratch directory for socket files, removed at the end of the test.
fn socket_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wasmserve-test")
        .tempdir()
        .expect("temp dir")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn udp_echo_answers_each_datagram() {
    let server = Server::start_with(&["--handler", ECHO, "--udp", "0"], 1);
    assert!(server.listening[0].starts_with("listening udp 127.0.0.1:"));
    let client = udp_client(&server.addrs[0]);
    assert_eq!(udp_exchange(&client, b"hello"), b"hello");
    assert_eq!(udp_exchange(&client, b"again"), b"again");
}

#[test]
fn udp_1000_datagrams_from_10_concurrent_clients() {
    let server = Server::start_with(&["--handler", ECHO, "--udp", "0"], 1);
    let clients: Vec<_> = (0..10)
        .map(|client| {
            let addr = server.addrs[0].clone();
            thread::spawn(move || {
                let socket = udp_client(&addr);
                for message in 0..100 {
                    let payload = format!("client {client} message {message}");
                    assert_eq!(
                        udp_exchange(&socket, payload.as_bytes()),
                        payload.as_bytes()
                    );
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("udp client");
    }
}

#[test]
fn udp_largest_datagram_round_trips() {
    let server = Server::start_with(&["--handler", ECHO, "--udp", "0"], 1);
    let client = udp_client(&server.addrs[0]);
    let payload = pattern(65_507, 7);
    assert!(udp_exchange(&client, &payload) == payload);
}

#[test]
fn udp_datagram_longer_than_max_datagram_is_dropped_and_logged() {
    let server = Server::start_with(
        &["--handler", ECHO, "--udp", "0", "--max-datagram", "100"],
        1,
    );
    let client = udp_client(&server.addrs[0]);
    client.send(&[1u8; 101]).expect("send");
    server.wait_for_log(&["datagram dropped", "max_datagram=100"]);
    assert_eq!(udp_exchange(&client, &[2u8; 100]), vec![2u8; 100]);
}

#[test]
fn ipv6_tcp_and_udp() {
    let server = Server::start_with(
        &["--handler", ECHO, "--tcp", "[::1]:0", "--udp", "[::1]:0"],
        2,
    );
    assert!(server.listening[0].starts_with("listening tcp [::1]:"));
    assert!(server.listening[1].starts_with("listening udp [::1]:"));
    let stream = TcpStream::connect(&server.addrs[0]).expect("connect over IPv6");
    assert_eq!(round_trip(stream, b"six".to_vec()), b"six");
    assert_eq!(udp_exchange(&udp_client(&server.addrs[1]), b"six"), b"six");
}

#[test]
fn host_names_are_resolved_at_start() {
    let server = Server::start_with(&["--handler", ECHO, "--tcp", "localhost:0"], 1);
    let stream = TcpStream::connect(&server.addrs[0]).expect("connect");
    assert_eq!(round_trip(stream, b"named".to_vec()), b"named");
}

#[test]
fn unix_stream_echo_and_socket_file_lifecycle() {
    let dir = socket_dir();
    let path = dir.path().join("echo.sock");
    let mut server = Server::start_with(
        &[
            "--handler",
            ECHO,
            "--unix",
            path_str(&path),
            "--unix-mode",
            "600",
        ],
        1,
    );
    assert_eq!(
        server.listening[0],
        format!("listening unix {} handler=echo.wasm", path.display())
    );
    let mode = std::fs::metadata(&path)
        .expect("socket file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut stream = UnixStream::connect(&path).expect("connect unix");
    let data = pattern(256 * 1024, 3);
    let writer = {
        let mut stream = stream.try_clone().expect("clone");
        let data = data.clone();
        thread::spawn(move || {
            stream.write_all(&data).expect("send");
            stream
                .shutdown(std::net::Shutdown::Write)
                .expect("half close");
        })
    };
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).expect("receive");
    writer.join().expect("writer");
    assert!(echoed == data);

    assert!(server.stop("TERM", Duration::from_secs(10)).success());
    assert!(!path.exists(), "the socket file is removed on clean exit");
}

#[test]
fn unix_stale_socket_file_is_replaced() {
    let dir = socket_dir();
    let path = dir.path().join("stale.sock");
    drop(UnixListener::bind(&path).expect("make a stale socket file"));
    assert!(path.exists());
    let server = Server::start_with(&["--handler", GREET, "--unix", path_str(&path)], 1);
    server.wait_for_log(&["replacing stale socket file"]);
    let stream = UnixStream::connect(&path).expect("connect");
    let mut greeting = Vec::new();
    (&stream).read_to_end(&mut greeting).expect("receive");
    assert_eq!(greeting, b"Thank you for connecting");
}

#[test]
fn unix_paths_that_must_not_be_replaced_are_refused() {
    let dir = socket_dir();
    let regular = dir.path().join("notes.txt");
    std::fs::write(&regular, "keep me").expect("write");
    let (status, stderr) = run_failing(&["--handler", ECHO, "--unix", path_str(&regular)]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("exists and is not a socket"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&regular).expect("read"), "keep me");

    let live = dir.path().join("live.sock");
    let _listener = UnixListener::bind(&live).expect("bind a live socket");
    let (status, stderr) = run_failing(&["--handler", ECHO, "--unix", path_str(&live)]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("another process is listening"), "{stderr}");
    assert!(live.exists(), "a live socket is left alone");

    let live_dgram = dir.path().join("live-dgram.sock");
    let _dgram = UnixDatagram::bind(&live_dgram).expect("bind a live datagram socket");
    let (_, stderr) = run_failing(&["--handler", ECHO, "--unix-dgram", path_str(&live_dgram)]);
    assert!(stderr.contains("another process is listening"), "{stderr}");
}

#[test]
fn unix_datagram_echo_replies_to_the_senders_path() {
    let dir = socket_dir();
    let path = dir.path().join("dgram.sock");
    let mut server = Server::start_with(&["--handler", ECHO, "--unix-dgram", path_str(&path)], 1);
    assert!(server.listening[0].starts_with("listening unix-dgram "));
    let client = UnixDatagram::bind(dir.path().join("client.sock")).expect("bind client");
    client
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("timeout");
    client.send_to(b"over unix", &path).expect("send");
    let mut buf = [0u8; 64];
    let len = client.recv(&mut buf).expect("receive");
    assert_eq!(&buf[..len], b"over unix");

    // An unbound sender is served, but there is nowhere to reply to.
    let unbound = UnixDatagram::unbound().expect("unbound socket");
    unbound.send_to(b"no reply", &path).expect("send");
    server.wait_for_log(&["reply discarded"]);

    assert!(server.stop("TERM", Duration::from_secs(10)).success());
    assert!(!path.exists());
}

/// `whoami` reports the transport and both addresses, for each transport.
#[test]
fn whoami_tells_the_truth_on_every_transport() {
    let dir = socket_dir();
    let stream_path = dir.path().join("who.sock");
    let dgram_path = dir.path().join("who-dgram.sock");
    let server = Server::start_with(
        &[
            "--handler",
            WHOAMI,
            "--tcp",
            "0",
            "--udp",
            "0",
            "--unix",
            path_str(&stream_path),
            "--unix-dgram",
            path_str(&dgram_path),
        ],
        4,
    );

    let tcp = TcpStream::connect(&server.addrs[0]).expect("tcp");
    let tcp_local = tcp.local_addr().expect("addr");
    let reply = String::from_utf8(read_to_end(tcp)).expect("utf-8");
    assert_eq!(
        reply,
        format!("transport=tcp peer={tcp_local} local={}\n", server.addrs[0])
    );

    let udp = udp_client(&server.addrs[1]);
    let udp_local = udp.local_addr().expect("addr");
    let reply = String::from_utf8(udp_exchange(&udp, b"?")).expect("utf-8");
    assert_eq!(
        reply,
        format!("transport=udp peer={udp_local} local={}\n", server.addrs[1])
    );

    let unix = UnixStream::connect(&stream_path).expect("unix");
    let mut reply = String::new();
    (&unix).read_to_string(&mut reply).expect("receive");
    assert_eq!(
        reply,
        format!(
            "transport=unix-stream peer= local={}\n",
            stream_path.display()
        )
    );

    let client_path: PathBuf = dir.path().join("who-client.sock");
    let dgram = UnixDatagram::bind(&client_path).expect("bind");
    dgram
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("timeout");
    dgram.send_to(b"?", &dgram_path).expect("send");
    let mut buf = [0u8; 512];
    let len = dgram.recv(&mut buf).expect("receive");
    assert_eq!(
        String::from_utf8_lossy(&buf[..len]),
        format!(
            "transport=unix-datagram peer={} local={}\n",
            client_path.display(),
            dgram_path.display()
        )
    );
}

#[test]
fn max_requests_serves_n_then_exits_zero() {
    let mut server = Server::start_with(
        &["--handler", GREET, "--tcp", "0", "--max-requests", "3"],
        1,
    );
    for _ in 0..3 {
        assert_eq!(read_to_end(server.connect()), b"Thank you for connecting");
    }
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert!(server.log_text().contains("served=3"));
    assert!(
        TcpStream::connect(server.addr()).is_err(),
        "the listener is closed"
    );
}

#[test]
fn max_requests_counts_datagrams_too() {
    let mut server =
        Server::start_with(&["--handler", ECHO, "--udp", "0", "--max-requests", "2"], 1);
    let client = udp_client(&server.addrs[0]);
    assert_eq!(udp_exchange(&client, b"one"), b"one");
    assert_eq!(udp_exchange(&client, b"two"), b"two");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

/// Python binds the sockets and execs wasmserve with them, as systemd does:
/// descriptors from 3 on, `LISTEN_FDS` and `LISTEN_PID` (exec keeps the pid).
const SPAWN_WITH_SOCKETS: &str = r#"
import os, socket, sys
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("127.0.0.1", 0))
tcp.listen(16)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
mode, wasmserve, handler = sys.argv[1:4]
if mode == "systemd":
    os.dup2(tcp.fileno(), 3)
    os.dup2(udp.fileno(), 4)
    os.set_inheritable(3, True)
    os.set_inheritable(4, True)
    os.environ["LISTEN_FDS"] = "2"
    os.environ["LISTEN_PID"] = str(os.getpid())
    args = [wasmserve, "--handler", handler]
else:
    os.set_inheritable(tcp.fileno(), True)
    os.set_inheritable(udp.fileno(), True)
    args = [wasmserve, "--handler", handler,
            "--listen-fd", str(tcp.fileno()), "--listen-fd", str(udp.fileno())]
os.execv(wasmserve, args)
"#;

/// Echo over the inherited TCP and UDP sockets.
fn assert_inherited_echo(server: &Server, word: &[u8]) {
    let stream = TcpStream::connect(&server.addrs[0]).expect("connect");
    assert_eq!(round_trip(stream, word.to_vec()), word);
    assert_eq!(udp_exchange(&udp_client(&server.addrs[1]), word), word);
}

fn serve_inherited(mode: &str) -> Server {
    let mut command = Command::new("python3");
    command.args(["-c", SPAWN_WITH_SOCKETS, mode, WASMSERVE, ECHO]);
    let server = Server::spawn(command, 2);
    assert!(
        server.listening[0].starts_with("listening tcp 127.0.0.1:"),
        "{}",
        server.listening[0]
    );
    assert!(
        server.listening[1].starts_with("listening udp 127.0.0.1:"),
        "{}",
        server.listening[1]
    );
    assert!(
        server.listening[0].contains(" fd="),
        "{}",
        server.listening[0]
    );
    server
}

#[test]
fn systemd_socket_activation_serves_the_passed_sockets() {
    let server = serve_inherited("systemd");
    assert!(
        server.listening[0].ends_with("fd=3"),
        "{}",
        server.listening[0]
    );
    assert!(
        server.listening[1].ends_with("fd=4"),
        "{}",
        server.listening[1]
    );
    assert_inherited_echo(&server, b"activated");
}

#[test]
fn listen_fd_serves_an_inherited_socket() {
    let server = serve_inherited("fd");
    assert_inherited_echo(&server, b"inherited");
}

#[test]
fn bad_transport_flags_get_one_line_errors() {
    let one_line = |args: &[&str], needle: &str| assert_one_line_error(args, &[needle]);
    one_line(
        &["--handler", ECHO, "--unix", "/nonexistent-dir/x.sock"],
        "cannot listen on unix /nonexistent-dir/x.sock",
    );
    one_line(
        &["--handler", ECHO, "--listen-fd", "1"],
        "descriptors 1 and 2 are stdout and stderr",
    );
    one_line(
        &["--handler", ECHO, "--listen-fd", "987"],
        "no such open descriptor",
    );
    one_line(
        &["--handler", ECHO, "--listen-fd", "5", "--listen-fd", "5"],
        "given more than once",
    );
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    one_line(
        &["--handler", ECHO, "--udp", &port],
        "address already in use",
    );

    let usage = assert_usage_error;
    usage(
        &["--handler", ECHO, "--udp", "nope"],
        "expected [HOST:]PORT",
    );
    usage(
        &["--handler", ECHO, "--unix", "/tmp/x", "--unix-mode", "999"],
        "octal mode",
    );
    usage(
        &["--handler", ECHO, "--udp", "0", "--max-datagram", "70000"],
        "from 1 to 65536",
    );
    usage(
        &["--handler", ECHO, "--tcp", "0", "--max-requests", "0"],
        "--max-requests",
    );
    usage(
        &["--handler", ECHO, "--tcp", "0", "--idle-timeout", "soon"],
        "duration",
    );
    usage(&["--handler", ECHO], "no listener");
}

#[test]
fn idle_timeout_makes_a_silent_clients_read_time_out() {
    let server = Server::start(ECHO, &["--idle-timeout", "200ms"]);
    let stream = server.connect();
    // The echo handler returns the error; the connection closes.
    assert!(read_to_end(stream).is_empty());
    server.wait_for_log(&["handler returned an error: timed out"]);
}
