//! The string commands: SET and its options, the GET and SET variants,
//! ranges and bits.

use wasmserve_sdk::kv::{self, WriteCondition, WriteExpiry};

use super::{
    NOT_AN_INTEGER, Outcome, SYNTAX, deadline, integer, key, keys_of, option_integer, refs,
};
use crate::resp::Replies;

/// Redis's largest string (`proto-max-bulk-len`).
const MAX_STRING: u64 = 512 * 1024 * 1024;

pub(super) fn run(
    data: &kv::Bucket,
    name: &str,
    rest: &[&[u8]],
    out: &mut Replies,
) -> Option<Outcome> {
    Some(match name {
        "GET" => data
            .get(&key(rest[0]))
            .map(|found| out.optional(found.as_deref())),
        "SET" => set(data, rest, out),
        "SETNX" => data
            .write(
                &key(rest[0]),
                rest[1],
                WriteCondition::IfAbsent,
                WriteExpiry::Clear,
                false,
            )
            .map(|outcome| out.integer(i64::from(outcome.written))),
        "SETEX" | "PSETEX" => set_expiring(data, name, rest, out),
        "GETSET" => data
            .write(
                &key(rest[0]),
                rest[1],
                WriteCondition::Always,
                WriteExpiry::Clear,
                true,
            )
            .map(|outcome| out.optional(outcome.previous.as_deref())),
        "GETDEL" => data
            .take(&key(rest[0]))
            .map(|found| out.optional(found.as_deref())),
        "GETEX" => getex(data, rest, out),
        "MGET" => {
            let keys = keys_of(rest);
            data.get_many(&refs(&keys)).map(|found| {
                out.array(found.len());
                found
                    .iter()
                    .for_each(|value| out.optional(value.as_deref()));
            })
        }
        "MSET" | "MSETNX" if !rest.len().is_multiple_of(2) => {
            out.error(&format!(
                "ERR wrong number of arguments for '{}' command",
                name.to_lowercase()
            ));
            Ok(())
        }
        "MSET" | "MSETNX" => {
            let keys: Vec<String> = rest.chunks(2).map(|pair| key(pair[0])).collect();
            let pairs: Vec<(&str, &[u8])> = keys
                .iter()
                .zip(rest.chunks(2))
                .map(|(key, pair)| (key.as_str(), pair[1]))
                .collect();
            match name {
                "MSET" => data.set_many(&pairs).map(|()| out.simple("OK")),
                _ => data
                    .set_many_if_none_exist(&pairs)
                    .map(|set| out.integer(i64::from(set))),
            }
        }
        "APPEND" => modify(data, &key(rest[0]), |current| {
            let value = [current.unwrap_or_default(), rest[1]].concat();
            let length = value.len() as i64;
            Ok((value, length))
        })
        .map(|result| reply_integer(result, out)),
        "STRLEN" => data
            .get(&key(rest[0]))
            .map(|found| out.integer(found.map_or(0, |value| value.len() as i64))),
        "SETRANGE" => setrange(data, rest, out),
        "GETRANGE" | "SUBSTR" => getrange(data, rest, out),
        "SETBIT" => setbit(data, rest, out),
        "LCS" => super::lcs::lcs(data, rest, out),
        "GETBIT" => match integer(rest[1]).and_then(|offset| u64::try_from(offset).ok()) {
            None => {
                out.error("ERR bit offset is not an integer or out of range");
                Ok(())
            }
            Some(offset) => data.get(&key(rest[0])).map(|found| {
                out.integer(i64::from(bit(found.as_deref().unwrap_or_default(), offset)));
            }),
        },
        _ => return None,
    })
}

/// Replaces the value at `key` with what `change` makes of it, keeping its
/// deadline, in a compare-and-swap retried while another writer got in
/// first; `change` may refuse with a Redis error instead.
pub(super) fn modify<T>(
    data: &kv::Bucket,
    key: &str,
    mut change: impl FnMut(Option<&[u8]>) -> Result<(Vec<u8>, T), String>,
) -> Result<Result<T, String>, kv::Error> {
    loop {
        let current = data.get(key)?;
        let (value, result) = match change(current.as_deref()) {
            Ok(changed) => changed,
            Err(message) => return Ok(Err(message)),
        };
        let condition = match current {
            Some(current) => WriteCondition::IfEqual(current),
            None => WriteCondition::IfAbsent,
        };
        if data
            .write(key, &value, condition, WriteExpiry::Keep, false)?
            .written
        {
            return Ok(Ok(result));
        }
    }
}

/// An integer reply, or the error `modify`'s change refused with.
pub(super) fn reply_integer(result: Result<i64, String>, out: &mut Replies) {
    match result {
        Ok(value) => out.integer(value),
        Err(message) => out.error(&message),
    }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
fn set(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let (name, value) = (key(rest[0]), &rest[1]);
    let mut condition = WriteCondition::Always;
    let (mut expiry, mut get) = (WriteExpiry::Clear, false);
    let mut options = rest[2..].iter();
    while let Some(option) = options.next() {
        let option = option.to_ascii_uppercase();
        match option.as_slice() {
            b"NX" if matches!(condition, WriteCondition::Always) => {
                condition = WriteCondition::IfAbsent;
            }
            b"XX" if matches!(condition, WriteCondition::Always) => {
                condition = WriteCondition::IfPresent;
            }
            b"GET" => get = true,
            b"KEEPTTL" if matches!(expiry, WriteExpiry::Clear) => expiry = WriteExpiry::Keep,
            unit @ (b"EX" | b"PX" | b"EXAT" | b"PXAT") if matches!(expiry, WriteExpiry::Clear) => {
                let amount = match option_integer(options.next()) {
                    Ok(amount) => amount,
                    Err(message) => {
                        out.error(message);
                        return Ok(());
                    }
                };
                let Some(at) = deadline(unit, amount) else {
                    out.error("ERR invalid expire time in 'set' command");
                    return Ok(());
                };
                expiry = WriteExpiry::At(at);
            }
            _ => {
                out.error(SYNTAX);
                return Ok(());
            }
        }
    }
    if matches!(condition, WriteCondition::Always) && matches!(expiry, WriteExpiry::Clear) && !get {
        return data.set(&name, value).map(|()| out.simple("OK"));
    }
    let outcome = data.write(&name, value, condition, expiry, get)?;
    match (get, outcome.written) {
        (true, _) => out.optional(outcome.previous.as_deref()),
        (false, true) => out.simple("OK"),
        (false, false) => out.nil(),
    }
    Ok(())
}

/// `SETEX key seconds value`, `PSETEX key milliseconds value`.
fn set_expiring(data: &kv::Bucket, name: &str, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let Some(amount) = integer(rest[1]) else {
        out.error(NOT_AN_INTEGER);
        return Ok(());
    };
    let unit: &[u8] = if name == "SETEX" { b"EX" } else { b"PX" };
    let Some(at) = deadline(unit, amount) else {
        out.error(&format!(
            "ERR invalid expire time in '{}' command",
            name.to_lowercase()
        ));
        return Ok(());
    };
    data.write(
        &key(rest[0]),
        rest[2],
        WriteCondition::Always,
        WriteExpiry::At(at),
        false,
    )
    .map(|_| out.simple("OK"))
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`.
fn getex(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let name = key(rest[0]);
    let change = match &rest[1..] {
        [] => None,
        [persist] if persist.eq_ignore_ascii_case(b"PERSIST") => Some(None),
        [unit, amount] => {
            let unit = unit.to_ascii_uppercase();
            if !matches!(unit.as_slice(), b"EX" | b"PX" | b"EXAT" | b"PXAT") {
                out.error(SYNTAX);
                return Ok(());
            }
            let Some(amount) = integer(amount) else {
                out.error(NOT_AN_INTEGER);
                return Ok(());
            };
            match deadline(&unit, amount) {
                Some(at) => Some(Some(at)),
                None => {
                    out.error("ERR invalid expire time in 'getex' command");
                    return Ok(());
                }
            }
        }
        _ => {
            out.error(SYNTAX);
            return Ok(());
        }
    };
    let found = match change {
        None => data.get(&name)?,
        Some(deadline) => data.get_and_expire(&name, deadline)?,
    };
    out.optional(found.as_deref());
    Ok(())
}

/// `SETRANGE key offset value`.
fn setrange(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let Some(offset) = integer(rest[1]) else {
        out.error(NOT_AN_INTEGER);
        return Ok(());
    };
    let Ok(offset) = u64::try_from(offset) else {
        out.error("ERR offset is out of range");
        return Ok(());
    };
    let patch = &rest[2];
    let name = key(rest[0]);
    if patch.is_empty() {
        return data
            .get(&name)
            .map(|found| out.integer(found.map_or(0, |value| value.len() as i64)));
    }
    if offset + patch.len() as u64 > MAX_STRING {
        out.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return Ok(());
    }
    let at = offset as usize;
    let result = modify(data, &name, |current| {
        let mut value = current.unwrap_or_default().to_vec();
        if value.len() < at + patch.len() {
            value.resize(at + patch.len(), 0);
        }
        value[at..at + patch.len()].copy_from_slice(patch);
        let length = value.len() as i64;
        Ok((value, length))
    })?;
    reply_integer(result, out);
    Ok(())
}

/// `GETRANGE key start end` (and the older `SUBSTR`).
fn getrange(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let (Some(start), Some(end)) = (integer(rest[1]), integer(rest[2])) else {
        out.error(NOT_AN_INTEGER);
        return Ok(());
    };
    let value = data.get(&key(rest[0]))?.unwrap_or_default();
    let length = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        out.bulk(b"");
        return Ok(());
    }
    let from_end = |index: i64| {
        if index < 0 {
            (length + index).max(0)
        } else {
            index
        }
    };
    let (start, end) = (from_end(start), from_end(end).min(length - 1));
    if start > end || length == 0 {
        out.bulk(b"");
        return Ok(());
    }
    out.bulk(&value[start as usize..=end as usize]);
    Ok(())
}

/// Bit `offset` of `value` (0 past its end), most significant bit first.
fn bit(value: &[u8], offset: u64) -> bool {
    let byte = usize::try_from(offset / 8).unwrap_or(usize::MAX);
    value
        .get(byte)
        .is_some_and(|byte| byte & (0x80 >> (offset % 8)) != 0)
}

/// `SETBIT key offset 0|1`: the bit's old value.
fn setbit(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let Some(offset) = integer(rest[1])
        .and_then(|offset| u64::try_from(offset).ok())
        .filter(|offset| *offset < MAX_STRING * 8)
    else {
        out.error("ERR bit offset is not an integer or out of range");
        return Ok(());
    };
    let on = match rest[2] {
        b"1" => true,
        b"0" => false,
        _ => {
            out.error("ERR bit is not an integer or out of range");
            return Ok(());
        }
    };
    let byte = (offset / 8) as usize;
    let mask = 0x80u8 >> (offset % 8);
    let result = modify(data, &key(rest[0]), |current| {
        let mut value = current.unwrap_or_default().to_vec();
        if value.len() <= byte {
            value.resize(byte + 1, 0);
        }
        let old = value[byte] & mask != 0;
        if on {
            value[byte] |= mask;
        } else {
            value[byte] &= !mask;
        }
        Ok((value, i64::from(old)))
    })?;
    reply_integer(result, out);
    Ok(())
}
