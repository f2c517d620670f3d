//! The commands, over the `data` bucket: each family in a file of its own
//! (`strings`, `counters`, `keys`, `expiry`, `server`), with Redis's reply
//! shapes and error strings. Expiry, counting, scanning and the steps over
//! several keys are the host's (contract 0.2.3's `keyspace`), so values are
//! stored as they are and expired keys never linger.

mod counters;
mod expiry;
mod keys;
mod server;
mod strings;

use wasmserve_sdk::kv;

use crate::resp::Replies;

/// Redis's answer to a number it cannot read.
pub(crate) const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub(crate) const SYNTAX: &str = "ERR syntax error";

/// What a command handler returns: a store error becomes `ERR ...`.
pub(crate) type Outcome = Result<(), kv::Error>;

/// Runs one command (not the subscription ones) and appends its reply;
/// `name` is `args[0]` upper-cased.
pub(crate) fn run(data: &kv::Bucket, name: &str, args: &[Vec<u8>], out: &mut Replies) {
    let rest = &args[1..];
    let Some(arity) = ARITY
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, a)| *a)
    else {
        out.error(&unknown(name, rest));
        return;
    };
    let fits = match arity {
        Arity::Exactly(n) => rest.len() == n,
        Arity::AtLeast(n) => rest.len() >= n,
    };
    if !fits {
        out.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            name.to_lowercase()
        ));
        return;
    }
    let outcome = strings::run(data, name, rest, out)
        .or_else(|| counters::run(data, name, rest, out))
        .or_else(|| keys::run(data, name, rest, out))
        .or_else(|| expiry::run(data, name, rest, out))
        .or_else(|| server::run(name, rest, out));
    match outcome {
        Some(Ok(())) => {}
        Some(Err(err)) => out.error(&format!("ERR {err}")),
        None => out.error(&unknown(name, rest)),
    }
}

/// How many arguments (after the name) a command takes.
#[derive(Clone, Copy)]
enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

use Arity::{AtLeast, Exactly};

/// Every command kvstore knows (besides the subscription ones and QUIT).
const ARITY: &[(&str, Arity)] = &[
    ("PING", AtLeast(0)),
    ("ECHO", Exactly(1)),
    ("GET", Exactly(1)),
    ("SET", AtLeast(2)),
    ("SETNX", Exactly(2)),
    ("SETEX", Exactly(3)),
    ("PSETEX", Exactly(3)),
    ("GETSET", Exactly(2)),
    ("GETDEL", Exactly(1)),
    ("GETEX", AtLeast(1)),
    ("MGET", AtLeast(1)),
    ("MSET", AtLeast(2)),
    ("MSETNX", AtLeast(2)),
    ("APPEND", Exactly(2)),
    ("STRLEN", Exactly(1)),
    ("SETRANGE", Exactly(3)),
    ("GETRANGE", Exactly(3)),
    ("SUBSTR", Exactly(3)),
    ("SETBIT", Exactly(3)),
    ("GETBIT", Exactly(2)),
    ("INCR", Exactly(1)),
    ("DECR", Exactly(1)),
    ("INCRBY", Exactly(2)),
    ("DECRBY", Exactly(2)),
    ("INCRBYFLOAT", Exactly(2)),
    ("DEL", AtLeast(1)),
    ("UNLINK", AtLeast(1)),
    ("EXISTS", AtLeast(1)),
    ("TOUCH", AtLeast(1)),
    ("TYPE", Exactly(1)),
    ("KEYS", Exactly(1)),
    ("SCAN", AtLeast(1)),
    ("DBSIZE", Exactly(0)),
    ("FLUSHDB", AtLeast(0)),
    ("FLUSHALL", AtLeast(0)),
    ("RENAME", Exactly(2)),
    ("RENAMENX", Exactly(2)),
    ("COPY", AtLeast(2)),
    ("RANDOMKEY", Exactly(0)),
    ("EXPIRE", AtLeast(2)),
    ("PEXPIRE", AtLeast(2)),
    ("EXPIREAT", AtLeast(2)),
    ("PEXPIREAT", AtLeast(2)),
    ("PERSIST", Exactly(1)),
    ("TTL", Exactly(1)),
    ("PTTL", Exactly(1)),
    ("EXPIRETIME", Exactly(1)),
    ("PEXPIRETIME", Exactly(1)),
    ("PUBLISH", Exactly(2)),
    ("CONFIG", AtLeast(1)),
    ("SELECT", Exactly(1)),
    ("COMMAND", AtLeast(0)),
    ("INFO", AtLeast(0)),
    ("FUNCTION", AtLeast(1)),
    ("TIME", Exactly(0)),
];

/// Redis's message for an unknown command.
fn unknown(name: &str, rest: &[Vec<u8>]) -> String {
    let shown: Vec<String> = rest
        .iter()
        .take(3)
        .map(|arg| format!("'{}'", String::from_utf8_lossy(arg)))
        .collect();
    format!(
        "ERR unknown command '{}', with args beginning with: {}",
        name.to_lowercase(),
        shown.join(" ")
    )
}

/// A decimal integer as Redis reads one (no spaces, no `+`).
pub(crate) fn integer(arg: &[u8]) -> Option<i64> {
    if arg.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

pub(crate) fn key(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// The keys of `args`, for the SDK's slices.
pub(crate) fn keys_of(args: &[Vec<u8>]) -> Vec<String> {
    args.iter().map(|arg| key(arg)).collect()
}

/// Borrowed views of `keys`.
pub(crate) fn refs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

/// The absolute deadline (Unix milliseconds) of an `EX`/`PX`/`EXAT`/`PXAT`
/// amount as `SET`, `SETEX` and `GETEX` read it; `None` for an amount
/// Redis refuses (not positive, or overflowing).
pub(crate) fn deadline(unit: &[u8], amount: i64) -> Option<u64> {
    if amount <= 0 {
        return None;
    }
    let seconds = matches!(unit, b"EX" | b"EXAT");
    let millis = if seconds {
        amount.checked_mul(1000)?
    } else {
        amount
    };
    let millis = match unit {
        b"EX" | b"PX" => millis.checked_add(i64::try_from(kv::now_millis()).ok()?)?,
        _ => millis,
    };
    u64::try_from(millis).ok()
}
