//! Dropping root after binding (`--user`, `--group`) and the owner of Unix
//! socket files (`--unix-owner`, `--unix-group`).

use std::io::BufReader;
use std::os::unix::fs::MetadataExt;

use crate::fixtures::ECHO;
use crate::support::{Server, assert_usage_error, exchange_line};

/// A free TCP port below 1024 on 127.0.0.1 (only root can bind one).
fn free_low_port() -> u16 {
    (600..1000)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port below 1024")
}

/// `(real uid, real gid)` of process `pid`, from /proc.
fn ids_of(pid: u32) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| -> u32 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .expect("an id")
    };
    (field("Uid:"), field("Gid:"))
}

#[test]
#[cfg_attr(
    wasmserve_not_root,
    ignore = "needs root: binding below 1024 and switching user"
)]
fn binds_a_low_port_as_root_then_serves_as_nobody() {
    let port = free_low_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("echo.sock");
    let socket_text = socket.to_string_lossy().into_owned();
    let tcp = format!("127.0.0.1:{port}");
    let server = Server::start_with(
        &[
            "--handler",
            ECHO,
            "--tcp",
            &tcp,
            "--unix",
            &socket_text,
            "--unix-owner",
            "nobody",
            "--unix-group",
            "nogroup",
            "--unix-mode",
            "660",
            "--user",
            "nobody",
            "--group",
            "nogroup",
        ],
        2,
    );
    let nobody = 65534;
    assert_eq!(ids_of(server.pid()), (nobody, nobody));
    server.wait_for_log(&["switched user", "no handler has run"]);
    let mut client = BufReader::new(std::net::TcpStream::connect(&tcp).expect("connect"));
    assert_eq!(exchange_line(&mut client, "as nobody"), "as nobody\n");
    let metadata = std::fs::metadata(&socket).expect("socket file");
    assert_eq!((metadata.uid(), metadata.gid()), (nobody, nobody));
    assert_eq!(metadata.mode() & 0o777, 0o660);
}

#[test]
fn unknown_users_and_groups_are_usage_errors() {
    assert_usage_error(
        &[
            "--handler",
            ECHO,
            "--tcp",
            "0",
            "--user",
            "no-such-user-here",
        ],
        "no user \"no-such-user-here\"",
    );
    assert_usage_error(
        &[
            "--handler",
            ECHO,
            "--tcp",
            "0",
            "--unix-group",
            "no-such-group-here",
        ],
        "no group \"no-such-group-here\"",
    );
    assert_usage_error(
        &["--handler", ECHO, "--tcp", "0", "--group", "0"],
        "required arguments were not provided",
    );
}
