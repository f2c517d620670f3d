//! The keyspace: DEL, UNLINK, EXISTS, TOUCH, TYPE, KEYS, SCAN, DBSIZE,
//! FLUSHDB, FLUSHALL, RENAME, RENAMENX, COPY, RANDOMKEY.

use wasmserve_sdk::kv::{self, RenameOutcome};

use super::{NOT_AN_INTEGER, Outcome, SYNTAX, integer, key, keys_of, option_integer, refs};
use crate::resp::Replies;

/// Keys a `KEYS` looks at per host call.
const KEYS_PAGE: u32 = 10_000;

pub(super) fn run(
    data: &kv::Bucket,
    name: &str,
    rest: &[&[u8]],
    out: &mut Replies,
) -> Option<Outcome> {
    Some(match name {
        "DEL" | "UNLINK" => delete(data, rest, out),
        "EXISTS" | "TOUCH" => {
            let keys = keys_of(rest);
            data.get_many(&refs(&keys))
                .map(|found| out.integer(found.iter().flatten().count() as i64))
        }
        "TYPE" => data.exists(&key(rest[0])).map(|exists| match exists {
            true => out.simple("string"),
            false => out.simple("none"),
        }),
        "KEYS" => all_keys(data, &key(rest[0])).map(|keys| {
            out.array(keys.len());
            keys.iter().for_each(|key| out.bulk(key.as_bytes()));
        }),
        "SCAN" => scan(data, rest, out),
        "DBSIZE" => data.count().map(|count| out.integer(count as i64)),
        "FLUSHDB" | "FLUSHALL" => match rest {
            [] => data.clear().map(|()| out.simple("OK")),
            [mode] if mode.eq_ignore_ascii_case(b"SYNC") || mode.eq_ignore_ascii_case(b"ASYNC") => {
                data.clear().map(|()| out.simple("OK"))
            }
            _ => {
                out.error(SYNTAX);
                Ok(())
            }
        },
        "RENAME" | "RENAMENX" => {
            let replace = name == "RENAME";
            data.rename(&key(rest[0]), &key(rest[1]), replace)
                .map(|outcome| match (outcome, replace) {
                    (RenameOutcome::NoSuchKey, _) => out.error("ERR no such key"),
                    (RenameOutcome::Renamed, true) => out.simple("OK"),
                    (RenameOutcome::Renamed, false) => out.integer(1),
                    (RenameOutcome::TargetExists, _) => out.integer(0),
                })
        }
        "COPY" => copy(data, rest, out),
        "RANDOMKEY" => data
            .random_key()
            .map(|found| out.optional(found.as_deref().map(str::as_bytes))),
        _ => return None,
    })
}

/// `DEL key...`: how many of the keys existed (a key named twice counts
/// once).
fn delete(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let mut deleted = 0;
    for name in keys_of(rest) {
        if data.take(&name)?.is_some() {
            deleted += 1;
        }
    }
    out.integer(deleted);
    Ok(())
}

/// Every key matching `pattern`.
fn all_keys(data: &kv::Bucket, pattern: &str) -> Result<Vec<String>, kv::Error> {
    let pattern = (pattern != "*").then_some(pattern);
    let (mut keys, mut cursor) = (Vec::new(), 0);
    loop {
        let page = data.scan(cursor, pattern, KEYS_PAGE)?;
        keys.extend(page.keys);
        if page.cursor == 0 {
            return Ok(keys);
        }
        cursor = page.cursor;
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
fn scan(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let Some(cursor) = std::str::from_utf8(rest[0])
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
    else {
        out.error("ERR invalid cursor");
        return Ok(());
    };
    let (mut pattern, mut count, mut only_strings) = (None, 10, true);
    let mut options = rest[1..].chunks(2);
    for option in options.by_ref() {
        let [name, value] = option else {
            out.error(SYNTAX);
            return Ok(());
        };
        match name.to_ascii_uppercase().as_slice() {
            b"MATCH" => pattern = Some(key(value)),
            b"COUNT" => match integer(value) {
                Some(n) if n >= 1 => count = u32::try_from(n).unwrap_or(u32::MAX),
                Some(_) => {
                    out.error(SYNTAX);
                    return Ok(());
                }
                None => {
                    out.error(NOT_AN_INTEGER);
                    return Ok(());
                }
            },
            b"TYPE" => only_strings = value.eq_ignore_ascii_case(b"string"),
            _ => {
                out.error(SYNTAX);
                return Ok(());
            }
        }
    }
    let pattern = pattern.filter(|pattern| pattern != "*");
    let page = data.scan(cursor, pattern.as_deref(), count)?;
    out.array(2);
    out.bulk(page.cursor.to_string().as_bytes());
    let keys = if only_strings { page.keys } else { Vec::new() };
    out.array(keys.len());
    keys.iter().for_each(|key| out.bulk(key.as_bytes()));
    Ok(())
}

/// `COPY source destination [DB index] [REPLACE]`.
fn copy(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let mut replace = false;
    let mut options = rest[2..].iter();
    while let Some(option) = options.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"REPLACE" => replace = true,
            b"DB" => match option_integer(options.next()) {
                Ok(0) => {}
                Ok(_) => {
                    out.error("ERR DB index is out of range");
                    return Ok(());
                }
                Err(message) => {
                    out.error(message);
                    return Ok(());
                }
            },
            _ => {
                out.error(SYNTAX);
                return Ok(());
            }
        }
    }
    if rest[0] == rest[1] {
        out.error("ERR source and destination objects are the same");
        return Ok(());
    }
    data.copy(&key(rest[0]), &key(rest[1]), replace)
        .map(|copied| out.integer(i64::from(copied)))
}
