//! The limits keep their meaning under contract 0.2: waiting in `poll` is
//! not CPU time, waits a guest makes for itself never renew the CPU budget,
//! pollables and stream handles cannot be hoarded, and `--idle-timeout`
//! still ends a silent client's connection whatever the guest waits on.

use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

use crate::fixtures::{FAULTY, TIMEOUT_GREET};
use crate::support::{Server, exchange_line, rss_kib};

const FAILURE: &str = "request ended by handler failure";

#[test]
fn a_wait_in_poll_is_not_cpu_time() {
    let server = Server::start(FAULTY, &["--max-cpu", "100ms"]);
    let mut client = BufReader::new(server.connect());
    // One second asleep on a WASI timer, ten times the CPU budget.
    assert_eq!(exchange_line(&mut client, "sleep 1000"), "slept 1000\n");
    assert!(!server.log_text().contains(FAILURE));
}

#[test]
fn waits_a_guest_makes_for_itself_do_not_renew_the_cpu_budget() {
    // 50 ms of computing, then a `poll` that a zero-length timer ends at
    // once, forever: without a client's input nothing renews the budget.
    held_to_max_cpu("poll-spin");
}

/// Sends `command` to a `faulty` guest under `--max-cpu 300ms` and asserts
/// the budget ends it within seconds while a bystander is served.
pub(crate) fn held_to_max_cpu(command: &str) {
    let server = Server::start(FAULTY, &["--max-cpu", "300ms"]);
    let mut offender = server.connect();
    offender
        .write_all(format!("{command}\n").as_bytes())
        .expect("send");
    let started = Instant::now();
    server.wait_for_log(&[FAILURE, "cause=\"cpu_budget\""]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // A bystander is served meanwhile and after.
    let mut bystander = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut bystander, "still here"), "still here\n");
}

#[test]
fn hoarded_pollables_trap_the_hoarder_alone_and_its_memory_returns() {
    const ROUNDS: usize = 10;
    let server = Server::start(FAULTY, &[]);
    let mut warm = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut warm, "warm up"), "warm up\n");
    drop(warm);
    std::thread::sleep(Duration::from_millis(300));
    let baseline = rss_kib(&server);
    for round in 0..ROUNDS {
        let mut hoarder = server.connect();
        hoarder.write_all(b"hoard-pollables\n").expect("send");
        server.wait_for_count("cause=\"trap\"", round + 1);
    }
    server.wait_for_log(&["held more than 4096 host handles"]);
    let mut bystander = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut bystander, "fine"), "fine\n");
    drop(bystander);
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kib(&server);
    eprintln!("RSS {baseline} KiB before {ROUNDS} hoarders, {after} KiB after");
    assert!(
        after < baseline + 4 * 1024,
        "{} KiB stayed resident",
        after.saturating_sub(baseline)
    );
}

#[test]
fn a_request_hands_out_its_streams_once() {
    let server = Server::start(FAULTY, &[]);
    let mut client = BufReader::new(server.connect());
    assert_eq!(
        exchange_line(&mut client, "hoard-streams"),
        "streams taken 1 times\n"
    );
}

#[test]
fn the_idle_timeout_ends_a_silent_client_whatever_the_guest_waits_on() {
    // The guest would wait a minute for the name; the client's idle
    // timeout (1 s) comes first and the read fails `timed-out`.
    let server = Server::start(
        TIMEOUT_GREET,
        &["--set", "timeout=60", "--idle-timeout", "1s"],
    );
    let _silent = server.connect();
    server.wait_for_log(&[FAILURE, "cause=\"idle_timeout\""]);
}
