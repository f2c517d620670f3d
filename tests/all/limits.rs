//! Hard limits and hostile guests: each offender ends only its own request,
//! with the right cause in the log, while 50 well-behaved connections on the
//! same server keep their data; afterwards the host's memory is back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::fixtures::{ECHO, FAULTY};
use crate::support::{Server, exchange_line, pattern, rss_kib};

/// Limits small enough to trip quickly in tests.
const TEST_LIMITS: &[&str] = &[
    "--max-cpu",
    "300ms",
    "--max-lifetime",
    "3s",
    "--max-memory",
    "32",
];

/// 50 connections, each exchanging 20 distinct lines, all checked.
fn bystanders(server: &Server) -> Vec<thread::JoinHandle<()>> {
    (0..50)
        .map(|client| {
            let mut stream = BufReader::new(server.connect());
            thread::spawn(move || {
                for round in 0..20 {
                    let line = format!("bystander {client} round {round}");
                    assert_eq!(exchange_line(&mut stream, &line), format!("{line}\n"));
                    thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect()
}

const FAILURE: &str = "request ended by handler failure";

/// Sends `command`; returns once the server has logged the connection's
/// failure (the `failures`-th so far) and closed it.
fn offend(server: &Server, command: &str, failures: usize) {
    let mut offender = server.connect();
    offender
        .write_all(format!("{command}\n").as_bytes())
        .expect("send");
    // The client does not read until the failure is logged: a flooding
    // guest must block on the full socket, not buffer without bound.
    server.wait_for_count(FAILURE, failures);
    let mut rest = Vec::new();
    let _ = offender.read_to_end(&mut rest);
}

#[test]
fn hostile_guests_end_only_their_own_request() {
    let server = Server::start(FAULTY, TEST_LIMITS);
    // Warm up: one of every normal path, so the baseline RSS includes them.
    for _ in 0..3 {
        let mut warm = BufReader::new(server.connect());
        assert_eq!(exchange_line(&mut warm, "grow 8"), "grew 8\n");
    }
    let baseline = rss_kib(&server);

    let offences = [
        ("spin", "cpu_budget"),
        ("alloc-forever", "out_of_memory"),
        ("recurse", "stack_overflow"),
        ("panic", "trap"),
        ("error", "guest_error"),
        ("hang", "max_lifetime"),
        ("flood", "max_lifetime"),
    ];
    for (round, (command, cause)) in offences.iter().enumerate() {
        let clients = bystanders(&server);
        offend(&server, command, round + 1);
        for client in clients {
            if client.join().is_err() {
                panic!("a bystander lost data while {command} ran");
            }
        }
        // Exactly one failure per offender, none for the bystanders.
        server.wait_for_count(FAILURE, round + 1);
        let log = server.log_text();
        let line = log
            .lines()
            .filter(|line| line.contains(FAILURE))
            .nth(round)
            .expect("the offender's failure line");
        assert!(
            line.contains(&format!("cause=\"{cause}\"")),
            "{command}: {line}"
        );
        for field in ["conn{id=", "peer=127.0.0.1:", "handler=\"faulty.wasm\""] {
            assert!(line.contains(field), "{command}: {line} lacks {field}");
        }
    }

    // No instance leaked: memory is back near where it was.
    thread::sleep(Duration::from_millis(300));
    let after = rss_kib(&server);
    eprintln!("server RSS: {baseline} KiB before the offenders, {after} KiB after");
    assert!(
        after < baseline + 16 * 1024,
        "RSS grew from {baseline} KiB to {after} KiB"
    );
}

#[test]
fn the_sandbox_holds() {
    let server = Server::start(FAULTY, &[]);
    let unreachable = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = unreachable.local_addr().expect("addr").port();
    let mut stream = BufReader::new(server.connect());
    let file = exchange_line(&mut stream, "open-file");
    assert!(file.starts_with("denied: "), "{file}");
    assert_eq!(exchange_line(&mut stream, "env"), "env: 0 vars, 0 args\n");
    let socket = exchange_line(&mut stream, &format!("connect {port}"));
    assert!(socket.starts_with("denied: "), "{socket}");
    let lookup = exchange_line(&mut stream, "lookup");
    assert!(lookup.starts_with("denied: "), "{lookup}");
}

#[test]
fn max_connections_holds_back_the_rest_until_one_ends() {
    const LIMIT: usize = 5;
    let server = Server::start(FAULTY, &["--max-connections", "5"]);
    let mut clients: Vec<BufReader<TcpStream>> = (0..LIMIT + 10)
        .map(|_| BufReader::new(server.connect()))
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .get_mut()
            .write_all(format!("client {i}\n").as_bytes())
            .expect("send");
    }
    // Exactly LIMIT are served; the others are connected (in the backlog)
    // but no handler runs for them.
    let served: Vec<usize> = clients
        .iter_mut()
        .enumerate()
        .filter_map(|(i, client)| {
            client
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            let mut reply = String::new();
            client.read_line(&mut reply).ok()?;
            assert_eq!(reply, format!("client {i}\n"));
            Some(i)
        })
        .collect();
    assert_eq!(served.len(), LIMIT, "served at once: {served:?}");

    // As served clients leave, the waiting ones are served, all of them.
    let waiting: Vec<BufReader<TcpStream>> = clients
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !served.contains(i))
        .map(|(_, client)| client)
        .collect();
    let mut remaining = waiting.len();
    for mut client in waiting {
        client
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut reply = String::new();
        client.read_line(&mut reply).expect("served eventually");
        assert!(reply.starts_with("client "), "{reply}");
        drop(client);
        remaining -= 1;
    }
    assert_eq!(remaining, 0);
}

#[test]
fn sigterm_during_100_transfers_loses_no_byte() {
    const CLIENTS: usize = 100;
    let mut server = Server::start(ECHO, &["--drain-timeout", "20s"]);
    let started = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let stream = server.connect();
            let started = Arc::clone(&started);
            thread::spawn(move || {
                let data = pattern(64 * 1024, i as u64);
                let mut stream = stream;
                // The first chunk's echo: the server has taken this
                // transfer (not merely the kernel's backlog) before the
                // stop comes.
                stream.write_all(&data[..4096]).expect("send");
                let mut echoed = vec![0u8; 4096];
                stream.read_exact(&mut echoed).expect("the first echo");
                started.wait();
                let mut writer = stream.try_clone().expect("clone");
                let rest = data[4096..].to_vec();
                let sender = thread::spawn(move || {
                    for chunk in rest.chunks(4096) {
                        thread::sleep(Duration::from_millis(20));
                        writer.write_all(chunk).expect("send");
                    }
                    writer
                        .shutdown(std::net::Shutdown::Write)
                        .expect("half close");
                });
                echoed.extend(crate::support::read_to_end(stream));
                sender.join().expect("sender");
                assert!(echoed == data, "client {i} lost or mixed bytes");
            })
        })
        .collect();
    // Every transfer is under way; stop the server in the middle of them.
    started.wait();
    let status = server.stop("TERM", Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    for client in clients {
        client.join().expect("client");
    }
    server.wait_for_log(&["stopped", "in_flight=100", "cut=0"]);
}
