//! Keys that expire (contract 0.2.3's `keyspace`, through `kvstore`): an
//! expired key gives its bytes back to the service's cap without anyone
//! reading it, on the embedded backends, and a guest filling the store with
//! short-lived keys cannot keep it full.

use std::thread;
use std::time::Duration;

use crate::fixtures::KVSTORE;
use crate::support::Server;

/// Fills a store of 64 KiB with 1 KiB values that live a second, until it
/// is full; then, without reading any, waits for them to expire and
/// stores as many again, without deadlines.
fn check_expired_keys_free_the_cap(state: &[&str]) {
    let mut flags = vec!["--kv-max-bytes", "65536"];
    flags.extend_from_slice(state);
    let server = Server::start(KVSTORE, &flags);
    let client = redis::Client::open(format!("redis://{}", server.addr())).expect("url");
    let mut connection = client.get_connection().expect("connect to kvstore");
    let value = vec![b'x'; 1024];
    let mut stored = 0;
    let full = (0..1000).find_map(|n| {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("k{n}"))
            .arg(&value)
            .arg("PX")
            .arg(1000)
            .query(&mut connection);
        match set {
            Ok(()) => {
                stored += 1;
                None
            }
            Err(err) => Some(err.to_string()),
        }
    });
    let full = full.expect("the 64 KiB store never filled up");
    assert!(full.contains("store is full"), "{full}");
    // How many the full store holds (on a loaded machine the first keys may
    // have expired while it filled).
    let held: u64 = redis::cmd("DBSIZE").query(&mut connection).expect("DBSIZE");
    assert!(held > 10, "only {held} of {stored} keys held");
    // Nothing reads the keys: the host's reclaimer alone frees them.
    thread::sleep(Duration::from_millis(2500));
    for n in 0..held {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("fresh{n}"))
            .arg(&value)
            .query(&mut connection);
        assert!(set.is_ok(), "fresh key {n} of {held}: {set:?}");
    }
    let count: u64 = redis::cmd("DBSIZE").query(&mut connection).expect("DBSIZE");
    assert_eq!(count, held, "only the fresh keys are left");
}

#[test]
fn expired_keys_free_the_cap_without_being_read_in_memory() {
    check_expired_keys_free_the_cap(&[]);
}

#[test]
fn expired_keys_free_the_cap_without_being_read_in_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = format!("file:{}", dir.path().join("state.redb").display());
    check_expired_keys_free_the_cap(&["--state", &state]);
}
