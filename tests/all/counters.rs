//! Pipelined counter steps (INCR, DECR, INCRBY, DECRBY), which kvstore
//! gathers into one `keyspace.increment-many` call (contract 0.2.4): the
//! replies are Redis's own, in order, on every backend. A step that fails
//! (its key holds no number, or the sum overflows) answers its error and
//! the others still apply;
//! a command that is not a well-formed step ends the batch and is answered
//! in its place.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::fixtures::KVSTORE;
use crate::redis_server::RedisServer;
use crate::support::Server;

/// The pipeline, one command per entry.
const COMMANDS: &[&[&str]] = &[
    &["SET", "s", "abc"],
    &["INCR", "a"],
    &["INCRBY", "a", "41"],
    &["INCR", "s"],
    &["DECR", "a"],
    &["INCRBY", "a", "x"],
    &["DECRBY", "b", "5"],
    &["INCRBY", "big", "9223372036854775807"],
    &["INCR", "big"],
    &["DECRBY", "a", "-9223372036854775808"],
    &["INCR", "a"],
    &["GET", "a"],
    &["INCR", "a", "extra"],
    &["INCR", "a"],
];

/// What redis-server 7 answers to [`COMMANDS`].
const REDIS_ANSWERS: &str = "+OK\r\n:1\r\n:42\r\n\
    -ERR value is not an integer or out of range\r\n:41\r\n\
    -ERR value is not an integer or out of range\r\n:-5\r\n:9223372036854775807\r\n\
    -ERR increment or decrement would overflow\r\n-ERR decrement would overflow\r\n:42\r\n$2\r\n42\r\n\
    -ERR wrong number of arguments for 'incr' command\r\n:43\r\n";

/// Sends [`COMMANDS`] as one RESP pipeline (one write) to `addr` and reads
/// the whole answer.
fn pipelined_answers(addr: &str) -> String {
    let mut pipeline = Vec::new();
    for command in COMMANDS {
        pipeline.extend(format!("*{}\r\n", command.len()).bytes());
        for arg in *command {
            pipeline.extend(format!("${}\r\n{arg}\r\n", arg.len()).bytes());
        }
    }
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(&pipeline).expect("send");
    let mut answers = vec![0; REDIS_ANSWERS.len()];
    stream.read_exact(&mut answers).expect("answers");
    String::from_utf8_lossy(&answers).into_owned()
}

/// Serves kvstore with `state` flags and checks its answers; `atomic`
/// counts the store's atomic calls for the 9 steps it was given: two
/// batches and two single steps.
fn check_kvstore(state: &[&str]) {
    let server = Server::start_with_metrics(KVSTORE, state);
    assert_eq!(pipelined_answers(&server.addr().to_string()), REDIS_ANSWERS);
    let (_, body) = crate::observing::fetch_metrics(&server.addrs[1], None);
    let atomic =
        "wasmserve_kv_operations_total{service=\"kvstore.wasm\",op=\"atomic\",result=\"ok\"} 4";
    assert!(body.contains(atomic), "{atomic} missing from:\n{body}");
}

#[test]
fn pipelined_counters_are_answered_as_redis_does_in_memory() {
    check_kvstore(&[]);
}

#[test]
fn pipelined_counters_are_answered_as_redis_does_in_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = format!("file:{}", dir.path().join("state.redb").display());
    check_kvstore(&["--state", &state]);
}

#[test]
#[cfg_attr(
    wasmserve_no_redis,
    ignore = "redis-server is not installed (Debian package redis-server; .ci/run installs it)"
)]
fn pipelined_counters_are_answered_as_redis_does_over_redis() {
    let redis = RedisServer::start();
    // The answers above are redis-server's own.
    assert_eq!(
        pipelined_answers(&format!("127.0.0.1:{}", redis.port)),
        REDIS_ANSWERS
    );
    check_kvstore(&["--state", &redis.url()]);
}
