//! The commands, over the `data` bucket: each family in a file of its own
//! (`strings`, `counters`, `keys`, `expiry`, `server`), with Redis's reply
//! shapes and error strings. Expiry, counting, scanning and the steps over
//! several keys are the host's (contract 0.2.3's `keyspace`), so values are
//! stored as they are and expired keys never linger.

pub(crate) mod counters;
mod expiry;
mod keys;
mod lcs;
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
pub(crate) fn run(data: &kv::Bucket, name: &str, args: &[&[u8]], out: &mut Replies) {
    let rest = &args[1..];
    let Some((family, arity)) = command(name) else {
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
    let outcome = match family {
        Family::Strings => strings::run(data, name, rest, out),
        Family::Counters => counters::run(data, name, rest, out),
        Family::Keys => keys::run(data, name, rest, out),
        Family::Expiry => expiry::run(data, name, rest, out),
        Family::Server => server::run(name, rest, out),
    };
    match outcome {
        Some(Ok(())) => {}
        Some(Err(err)) => out.error(&format!("ERR {err}")),
        None => out.error(&unknown(name, rest)),
    }
}

/// Which file a command's code is in.
#[derive(Clone, Copy)]
enum Family {
    Strings,
    Counters,
    Keys,
    Expiry,
    Server,
}

use Family::{Counters, Expiry, Keys, Server, Strings};

/// How many arguments (after the name) a command takes.
#[derive(Clone, Copy)]
enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

use Arity::{AtLeast, Exactly};

/// Every command kvstore knows (besides the subscription ones and QUIT):
/// its family and how many arguments it takes. One `match`, so finding a
/// command costs a few comparisons, not one per known name.
fn command(name: &str) -> Option<(Family, Arity)> {
    Some(match name {
        "PING" => (Server, AtLeast(0)),
        "ECHO" => (Server, Exactly(1)),
        "GET" => (Strings, Exactly(1)),
        "SET" => (Strings, AtLeast(2)),
        "SETNX" => (Strings, Exactly(2)),
        "SETEX" => (Strings, Exactly(3)),
        "PSETEX" => (Strings, Exactly(3)),
        "GETSET" => (Strings, Exactly(2)),
        "GETDEL" => (Strings, Exactly(1)),
        "GETEX" => (Strings, AtLeast(1)),
        "MGET" => (Strings, AtLeast(1)),
        "MSET" => (Strings, AtLeast(2)),
        "MSETNX" => (Strings, AtLeast(2)),
        "APPEND" => (Strings, Exactly(2)),
        "STRLEN" => (Strings, Exactly(1)),
        "SETRANGE" => (Strings, Exactly(3)),
        "GETRANGE" => (Strings, Exactly(3)),
        "SUBSTR" => (Strings, Exactly(3)),
        "SETBIT" => (Strings, Exactly(3)),
        "GETBIT" => (Strings, Exactly(2)),
        "LCS" => (Strings, AtLeast(2)),
        "INCR" => (Counters, Exactly(1)),
        "DECR" => (Counters, Exactly(1)),
        "INCRBY" => (Counters, Exactly(2)),
        "DECRBY" => (Counters, Exactly(2)),
        "INCRBYFLOAT" => (Counters, Exactly(2)),
        "DEL" => (Keys, AtLeast(1)),
        "UNLINK" => (Keys, AtLeast(1)),
        "EXISTS" => (Keys, AtLeast(1)),
        "TOUCH" => (Keys, AtLeast(1)),
        "TYPE" => (Keys, Exactly(1)),
        "KEYS" => (Keys, Exactly(1)),
        "SCAN" => (Keys, AtLeast(1)),
        "DBSIZE" => (Keys, Exactly(0)),
        "FLUSHDB" => (Keys, AtLeast(0)),
        "FLUSHALL" => (Keys, AtLeast(0)),
        "RENAME" => (Keys, Exactly(2)),
        "RENAMENX" => (Keys, Exactly(2)),
        "COPY" => (Keys, AtLeast(2)),
        "RANDOMKEY" => (Keys, Exactly(0)),
        "EXPIRE" => (Expiry, AtLeast(2)),
        "PEXPIRE" => (Expiry, AtLeast(2)),
        "EXPIREAT" => (Expiry, AtLeast(2)),
        "PEXPIREAT" => (Expiry, AtLeast(2)),
        "PERSIST" => (Expiry, Exactly(1)),
        "TTL" => (Expiry, Exactly(1)),
        "PTTL" => (Expiry, Exactly(1)),
        "EXPIRETIME" => (Expiry, Exactly(1)),
        "PEXPIRETIME" => (Expiry, Exactly(1)),
        "PUBLISH" => (Server, Exactly(2)),
        "CONFIG" => (Server, AtLeast(1)),
        "SELECT" => (Server, Exactly(1)),
        "COMMAND" => (Server, AtLeast(0)),
        "INFO" => (Server, AtLeast(0)),
        "FUNCTION" => (Server, AtLeast(1)),
        "TIME" => (Server, Exactly(0)),
        _ => return None,
    })
}

/// Redis's message for an unknown command.
fn unknown(name: &str, rest: &[&[u8]]) -> String {
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

/// The integer argument of an option (`EX 10`, `DB 0`, `MINMATCHLEN 4`),
/// or the error Redis answers: a syntax error when it is missing, "not an
/// integer" when it is not one.
pub(crate) fn option_integer(value: Option<&&[u8]>) -> Result<i64, &'static str> {
    integer(value.ok_or(SYNTAX)?).ok_or(NOT_AN_INTEGER)
}

pub(crate) fn key(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// The keys of `args`, for the SDK's slices.
pub(crate) fn keys_of(args: &[&[u8]]) -> Vec<String> {
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
