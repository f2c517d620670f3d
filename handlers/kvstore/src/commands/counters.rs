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
    let by = match name {
        "INCR" => Some(1),
        "DECR" => Some(-1),
        "INCRBY" => integer(rest[1]),
        "DECRBY" => match integer(rest[1]) {
            Some(i64::MIN) => {
                out.error("ERR decrement would overflow");
                return Some(Ok(()));
            }
            by => by.map(|by| -by),
        },
        "INCRBYFLOAT" => return Some(add_float(data, rest, out)),
        _ => return None,
    };
    let Some(by) = by else {
        out.error(NOT_AN_INTEGER);
        return Some(Ok(()));
    };
    match data.increment(&key(rest[0]), by) {
        Ok(value) => out.integer(value),
        // The host's only refusal of a well-formed key: not a number, or
        // out of range.
        Err(kv::Error::Other(_)) => out.error(NOT_AN_INTEGER),
        Err(err) => return Some(Err(err)),
    }
    Some(Ok(()))
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
