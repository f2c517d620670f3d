//! The counters: INCR, DECR, INCRBY, DECRBY (the host's atomic
//! `increment`, which keeps a key's deadline) and INCRBYFLOAT (a
//! compare-and-swap).

use wasmserve_sdk::kv;

use super::strings::modify;
use super::{NOT_AN_INTEGER, Outcome, integer, key};
use crate::resp::Replies;

pub(super) fn run(
    data: &kv::Bucket,
    name: &str,
    rest: &[&[u8]],
    out: &mut Replies,
) -> Option<Outcome> {
    if name == "INCRBYFLOAT" {
        return Some(add_float(data, rest, out));
    }
    match step(name, rest)? {
        Ok(by) => reply(data.increment(&key(rest[0]), by), out),
        Err(refusal) => out.error(refusal),
    }
    Some(Ok(()))
}

/// What INCR, DECR, INCRBY or DECRBY (`name`, with its arguments `rest`,
/// their number checked) adds: `Err` with Redis's reply when the amount is
/// not an integer or cannot be negated; `None` for any other command.
/// Pipelined steps are gathered into one call (`batch.rs`).
pub(crate) fn step(name: &str, rest: &[&[u8]]) -> Option<Result<i64, &'static str>> {
    let by = match name {
        "INCR" => Some(1),
        "DECR" => Some(-1),
        "INCRBY" => integer(rest[1]),
        "DECRBY" => match integer(rest[1]) {
            Some(by) => match by.checked_neg() {
                Some(negated) => Some(negated),
                None => return Some(Err("ERR decrement would overflow")),
            },
            None => None,
        },
        _ => return None,
    };
    Some(by.ok_or(NOT_AN_INTEGER))
}

/// The reply to one step's `outcome`, as Redis gives it.
pub(crate) fn reply(outcome: Result<i64, kv::Error>, out: &mut Replies) {
    match outcome {
        Ok(value) => out.integer(value),
        // The host's refusals of a well-formed key: the sum overflows (in
        // Redis's words), or the value is not a number.
        Err(kv::Error::Other(why)) if why.contains("would overflow") => {
            out.error("ERR increment or decrement would overflow");
        }
        Err(kv::Error::Other(_)) => out.error(NOT_AN_INTEGER),
        Err(err) => out.error(&format!("ERR {err}")),
    }
}

/// A float as Redis reads one: no spaces around it.
fn float(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.trim() != text || text.is_empty() {
        return None;
    }
    text.parse().ok()
}

/// `INCRBYFLOAT key increment`.
fn add_float(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let Some(by) = float(rest[1]) else {
        out.error("ERR value is not a valid float");
        return Ok(());
    };
    let result = modify(data, &key(rest[0]), |current| {
        let current = match current {
            None => 0.0,
            Some(text) => float(text).ok_or("ERR value is not a valid float")?,
        };
        let sum = current + by;
        if !sum.is_finite() {
            return Err("ERR increment would produce NaN or Infinity".to_owned());
        }
        // No "-0": Redis prints a zero sum as 0.
        let text = if sum == 0.0 {
            "0".to_owned()
        } else {
            sum.to_string()
        };
        Ok((text.clone().into_bytes(), text))
    })?;
    match result {
        Ok(text) => out.bulk(text.as_bytes()),
        Err(message) => out.error(&message),
    }
    Ok(())
}
