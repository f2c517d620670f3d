//! Fresh and reused instances, and the OS limits the instance pool must fit.

use std::net::UdpSocket;
use std::time::Duration;

use crate::fixtures::{ECHO, FAULTY};
use crate::support::{Server, assert_one_line_error};
use crate::transports::{udp_client, udp_exchange};

/// Sends `count` `n` times, one after another; returns the replies. The
/// reply leaves before `handle` returns and its instance is put back, so
/// each request waits a moment first: the instance is idle again by then.
fn counts(client: &UdpSocket, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            String::from_utf8_lossy(&udp_exchange(client, b"count\n")).into_owned()
        })
        .collect()
}

#[test]
fn every_datagram_gets_a_fresh_instance_by_default() {
    let server = Server::start_with(&["--handler", FAULTY, "--udp", "0"], 1);
    let client = udp_client(&server.addrs[0]);
    assert_eq!(counts(&client, 3), vec!["count 1\n"; 3]);
}

#[test]
fn reused_datagram_instances_keep_their_state_until_a_trap() {
    let server = Server::start_with(
        &[
            "--handler",
            FAULTY,
            "--udp",
            "0",
            "--reuse-datagram-instances",
        ],
        1,
    );
    let client = udp_client(&server.addrs[0]);
    // One client at a time: the same warm instance serves every datagram.
    assert_eq!(
        counts(&client, 3),
        vec!["count 1\n", "count 2\n", "count 3\n"]
    );
    // A trap drops the instance; the next datagram gets a fresh one. (The
    // third answer reaches the client before its instance is back among
    // the warm ones, which its access line follows: were the trap sent
    // sooner, a second instance could take it and the first live on.)
    server.wait_for_count("outcome=\"ok\"", 3);
    client.send(b"panic\n").expect("send");
    server.wait_for_log(&["request ended by handler failure", "cause=\"trap\""]);
    assert_eq!(counts(&client, 2), vec!["count 1\n", "count 2\n"]);
}

#[test]
fn reused_datagram_instances_leave_stream_connections_fresh() {
    let server = Server::start_with(
        &[
            "--handler",
            ECHO,
            "--tcp",
            "0",
            "--udp",
            "0",
            "--reuse-datagram-instances",
        ],
        2,
    );
    let client = udp_client(&server.addrs[1]);
    for round in 0..20 {
        let payload = format!("datagram {round}");
        assert_eq!(
            udp_exchange(&client, payload.as_bytes()),
            payload.as_bytes()
        );
    }
    let mut stream = std::io::BufReader::new(server.connect());
    assert_eq!(
        crate::support::exchange_line(&mut stream, "over tcp"),
        "over tcp\n"
    );
}

#[test]
fn a_pool_the_os_limits_cannot_hold_is_refused_at_start() {
    // 100,000 connections need more descriptors or memory mappings than a
    // default Linux allows; either way the message names the flag and fix.
    assert_one_line_error(
        &[
            "--handler",
            ECHO,
            "--tcp",
            "0",
            "--max-connections",
            "100000",
        ],
        &[
            "--max-connections 100000 needs",
            "lower --max-connections to",
        ],
    );
}
