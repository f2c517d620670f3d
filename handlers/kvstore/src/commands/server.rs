//! What a client or Redis's test harness asks of the server itself: PING,
//! ECHO, CONFIG, SELECT, COMMAND, INFO, FUNCTION FLUSH, TIME, PUBLISH.

use wasmserve_sdk::channels;

use super::Outcome;
use crate::resp::Replies;

/// What kvstore reports of Redis's configuration: enough for the clients
/// that ask (redis-benchmark reads `save` and `appendonly`; without an
/// answer it warns `Could not fetch server CONFIG`).
const CONFIG: &[(&str, &str)] = &[
    ("save", ""),
    ("appendonly", "no"),
    ("databases", "1"),
    ("maxmemory", "0"),
];

pub(super) fn run(name: &str, rest: &[&[u8]], out: &mut Replies) -> Option<Outcome> {
    match name {
        "PING" if rest.is_empty() => out.simple("PONG"),
        "PING" | "ECHO" => out.bulk(rest[0]),
        "CONFIG" if rest[0].eq_ignore_ascii_case(b"GET") => config_get(&rest[1..], out),
        // Settings a client or a test sets are accepted and have no effect.
        "CONFIG" if rest[0].eq_ignore_ascii_case(b"SET") => out.simple("OK"),
        "CONFIG" => out.array(0),
        "SELECT" if rest[0] == b"0" => out.simple("OK"),
        "SELECT" => out.error("ERR DB index is out of range"),
        "COMMAND" => out.array(0),
        // What clients and test harnesses read: the version, and an
        // allocator that is not jemalloc (so they skip its memory checks).
        "INFO" => out.bulk(
            b"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nmem_allocator:libc\r\n",
        ),
        "FUNCTION" if rest[0].eq_ignore_ascii_case(b"FLUSH") => out.simple("OK"),
        "FUNCTION" => out.error("ERR unknown subcommand for 'function': kvstore has no functions"),
        "TIME" => {
            let micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_micros());
            out.array(2);
            out.bulk((micros / 1_000_000).to_string().as_bytes());
            out.bulk((micros % 1_000_000).to_string().as_bytes());
        }
        "PUBLISH" => {
            // A handler cannot count another host's subscribers: 0.
            return Some(
                match channels::publish(&String::from_utf8_lossy(rest[0]), rest[1]) {
                    Ok(()) => {
                        out.integer(0);
                        Ok(())
                    }
                    Err(err) => {
                        out.error(&format!("ERR {err}"));
                        Ok(())
                    }
                },
            );
        }
        _ => return None,
    }
    Some(Ok(()))
}

/// `CONFIG GET parameter...`: each known parameter named (or `*`) as a
/// name and a value, as Redis answers; unknown ones are left out.
fn config_get(parameters: &[&[u8]], out: &mut Replies) {
    let found: Vec<&(&str, &str)> = CONFIG
        .iter()
        .filter(|(name, _)| {
            parameters
                .iter()
                .any(|asked| asked == b"*" || asked.eq_ignore_ascii_case(name.as_bytes()))
        })
        .collect();
    out.array(found.len() * 2);
    for (name, value) in found {
        out.bulk(name.as_bytes());
        out.bulk(value.as_bytes());
    }
}
