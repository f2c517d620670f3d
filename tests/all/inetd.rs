//! One connection per process: `--inetd` (the connection on stdin and
//! stdout, as inetd and xinetd start a "nowait" server) and a connected
//! socket passed by systemd (`Accept=yes`: descriptor 3, `LISTEN_FDS=1`).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::ECHO;
use crate::support::{CACHE_DIR, WASMSERVE};

/// A connected pair over loopback: (the client's end, the server's end).
fn connected_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// Echoes one line through `client`, half-closes, and waits for the end
/// of the stream and for `child` to exit 0.
fn echo_once_then_exit(mut client: TcpStream, mut child: std::process::Child) {
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    client.write_all(b"one connection\n").expect("send");
    client.shutdown(Shutdown::Write).expect("half-close");
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).expect("read to the end");
    assert_eq!(reply, b"one connection\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "wasmserve did not exit after its connection"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn inetd_mode_serves_the_connection_on_stdin_and_stdout_then_exits() {
    let (client, server_end) = connected_pair();
    let dir = tempfile::tempdir().expect("tempdir");
    let access = dir.path().join("access.log");
    let socket: OwnedFd = server_end.into();
    // As inetd does: the socket on stdin, stdout and stderr.
    let child = Command::new(WASMSERVE)
        .args(["--inetd", "--handler", ECHO, "--access-log"])
        .arg(&access)
        .env("WASMSERVE_CACHE_DIR", CACHE_DIR)
        .stdin(Stdio::from(socket.try_clone().expect("dup")))
        .stdout(Stdio::from(socket.try_clone().expect("dup")))
        .stderr(Stdio::from(socket))
        .spawn()
        .expect("start wasmserve --inetd");
    echo_once_then_exit(client, child);
    let log = std::fs::read_to_string(&access).expect("access log");
    assert!(
        log.contains("outcome=\"ok\"") && log.contains("bytes_in=15"),
        "{log}"
    );
}

#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "python3 (the exec wrapper playing systemd) could not be run here"
)]
fn a_connected_socket_from_systemd_accept_yes_is_served_once() {
    let (client, server_end) = connected_pair();
    let socket: OwnedFd = server_end.into();
    // systemd's hand-over, done by exec from a wrapper so that LISTEN_PID
    // is wasmserve's own pid: the socket as descriptor 3, LISTEN_FDS=1.
    let script = "import os, sys\n\
                  os.dup2(0, 3)\n\
                  null = os.open('/dev/null', os.O_RDONLY)\n\
                  os.dup2(null, 0)\n\
                  os.environ['LISTEN_FDS'] = '1'\n\
                  os.environ['LISTEN_PID'] = str(os.getpid())\n\
                  os.execv(sys.argv[1], sys.argv[1:])\n";
    let child = Command::new("python3")
        .args(["-c", script, WASMSERVE, "--handler", ECHO])
        .env("WASMSERVE_CACHE_DIR", CACHE_DIR)
        .stdin(Stdio::from(socket))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wasmserve with a systemd-style socket");
    echo_once_then_exit(client, child);
}
