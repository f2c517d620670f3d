//! Expiry: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX, XX, GT, LT),
//! PERSIST, TTL, PTTL, EXPIRETIME, PEXPIRETIME — over the host's deadlines.

use wasmserve_sdk::kv::{self, Expiry, ExpiryCondition};

use super::{NOT_AN_INTEGER, Outcome, integer, key};
use crate::resp::Replies;

pub(super) fn run(
    data: &kv::Bucket,
    name: &str,
    rest: &[&[u8]],
    out: &mut Replies,
) -> Option<Outcome> {
    Some(match name {
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => expire(data, name, rest, out),
        "PERSIST" => data
            .set_expiry(&key(rest[0]), None, ExpiryCondition::IF_SOME)
            .map(|changed| out.integer(i64::from(changed))),
        "TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME" => data.expiry(&key(rest[0])).map(|expiry| {
            out.integer(match expiry {
                Expiry::Absent => -2,
                Expiry::Persistent => -1,
                Expiry::At(at) => shown(name, at),
            })
        }),
        _ => return None,
    })
}

/// A deadline as the command shows it: time left (`TTL` rounded to the
/// nearest second, as Redis does) or the deadline itself.
fn shown(name: &str, at: u64) -> i64 {
    let at = i64::try_from(at).unwrap_or(i64::MAX);
    let left = at
        .saturating_sub(i64::try_from(kv::now_millis()).unwrap_or(0))
        .max(0);
    match name {
        "TTL" => (left + 500) / 1000,
        "PTTL" => left,
        "EXPIRETIME" => (at + 500) / 1000,
        _ => at,
    }
}

/// `EXPIRE key seconds [NX|XX|GT|LT]` and its three siblings.
fn expire(data: &kv::Bucket, name: &str, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let Some(amount) = integer(rest[1]) else {
        out.error(NOT_AN_INTEGER);
        return Ok(());
    };
    let mut condition = ExpiryCondition::empty();
    for option in &rest[2..] {
        let flag = match option.to_ascii_uppercase().as_slice() {
            b"NX" => ExpiryCondition::IF_NONE,
            b"XX" => ExpiryCondition::IF_SOME,
            b"GT" => ExpiryCondition::IF_LATER,
            b"LT" => ExpiryCondition::IF_EARLIER,
            _ => {
                out.error(&format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(option)
                ));
                return Ok(());
            }
        };
        condition |= flag;
    }
    if condition.contains(ExpiryCondition::IF_NONE) && condition != ExpiryCondition::IF_NONE {
        out.error("ERR NX and XX, GT or LT options at the same time are not compatible");
        return Ok(());
    }
    if condition.contains(ExpiryCondition::IF_LATER | ExpiryCondition::IF_EARLIER) {
        out.error("ERR GT and LT options at the same time are not compatible");
        return Ok(());
    }
    let Some(at) = absolute(name, amount) else {
        out.error(&format!(
            "ERR invalid expire time in '{}' command",
            name.to_lowercase()
        ));
        return Ok(());
    };
    // A deadline before 1970 is as past as any: the key goes.
    let at = u64::try_from(at).unwrap_or(0);
    data.set_expiry(&key(rest[0]), Some(at), condition)
        .map(|changed| out.integer(i64::from(changed)))
}

/// The deadline in Unix milliseconds, with Redis's overflow checks.
fn absolute(name: &str, amount: i64) -> Option<i64> {
    let millis = match name {
        "EXPIRE" | "EXPIREAT" => amount.checked_mul(1000)?,
        _ => amount,
    };
    match name {
        "EXPIRE" | "PEXPIRE" => millis.checked_add(i64::try_from(kv::now_millis()).ok()?),
        _ => Some(millis),
    }
}
