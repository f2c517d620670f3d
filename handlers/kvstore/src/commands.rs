//! The commands, over the `data` bucket.

use wasmserve_sdk::{channels, kv};

use crate::resp::Replies;
use crate::stored::{Stored, now_millis};

/// Redis's answer to a counter command on a value that is not one.
const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

/// Runs one command (not the subscription ones) and appends its reply;
/// `name` is `args[0]` upper-cased.
pub(crate) fn run(data: &kv::Bucket, name: &str, args: &[Vec<u8>], out: &mut Replies) {
    let rest = &args[1..];
    let outcome = match (name, rest.len()) {
        ("PING", 0) => {
            out.simple("PONG");
            Ok(())
        }
        ("PING", 1) => {
            out.bulk(&rest[0]);
            Ok(())
        }
        ("ECHO", 1) => {
            out.bulk(&rest[0]);
            Ok(())
        }
        ("GET", 1) => get(data, &rest[0]).map(|found| out.optional(found.as_deref())),
        ("SET", 2..) => set(data, rest, out),
        ("DEL", 1..) => delete(data, rest).map(|n| out.integer(n)),
        ("EXISTS", 1..) => exists(data, rest).map(|n| out.integer(n)),
        ("INCR", 1) => add(data, &rest[0], 1, out),
        ("DECR", 1) => add(data, &rest[0], -1, out),
        ("INCRBY" | "DECRBY", 2) => match integer(&rest[1]) {
            Some(by) if name == "INCRBY" => add(data, &rest[0], by, out),
            Some(by) => add(data, &rest[0], by.wrapping_neg(), out),
            None => {
                out.error(NOT_AN_INTEGER);
                Ok(())
            }
        },
        ("MGET", 1..) => mget(data, rest, out),
        ("MSET", n) if n >= 2 && n % 2 == 0 => mset(data, rest).map(|()| out.simple("OK")),
        ("EXPIRE" | "PEXPIRE", 2) => match integer(&rest[1]) {
            Some(after) => {
                let millis = if name == "EXPIRE" {
                    after.saturating_mul(1000)
                } else {
                    after
                };
                expire(data, &rest[0], millis).map(|set| out.integer(i64::from(set)))
            }
            None => {
                out.error(NOT_AN_INTEGER);
                Ok(())
            }
        },
        ("TTL" | "PTTL", 1) => ttl(data, &rest[0], name == "TTL").map(|t| out.integer(t)),
        ("PUBLISH", 2) => {
            // A handler cannot count another host's subscribers: 0.
            channels::publish(&String::from_utf8_lossy(&rest[0]), &rest[1])
                .map(|()| out.integer(0))
                .map_err(|err| err.to_string())
        }
        ("CONFIG", 2..) if rest[0].eq_ignore_ascii_case(b"GET") => {
            config_get(&rest[1..], out);
            Ok(())
        }
        ("CONFIG", _) => {
            out.array(0);
            Ok(())
        }
        ("SELECT", 1) if rest[0] == b"0" => {
            out.simple("OK");
            Ok(())
        }
        ("COMMAND", _) => {
            out.array(0);
            Ok(())
        }
        _ => {
            out.error(&unknown(name, rest));
            Ok(())
        }
    };
    if let Err(err) = outcome {
        out.error(&format!("ERR {err}"));
    }
}

/// What kvstore reports of Redis's configuration: enough for the clients
/// that ask (redis-benchmark reads `save` and `appendonly`; without an
/// answer it warns `Could not fetch server CONFIG`).
const CONFIG: &[(&str, &str)] = &[
    ("save", ""),
    ("appendonly", "no"),
    ("databases", "1"),
    ("maxmemory", "0"),
];

/// `CONFIG GET parameter...`: each known parameter named (or `*`) as a
/// name and a value, as Redis answers; unknown ones are left out.
fn config_get(parameters: &[Vec<u8>], out: &mut Replies) {
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

/// Redis's message for an unknown command or a wrong number of arguments.
fn unknown(name: &str, rest: &[Vec<u8>]) -> String {
    const KNOWN: &[&str] = &[
        "PING",
        "ECHO",
        "GET",
        "SET",
        "DEL",
        "EXISTS",
        "INCR",
        "DECR",
        "INCRBY",
        "DECRBY",
        "MGET",
        "MSET",
        "EXPIRE",
        "PEXPIRE",
        "TTL",
        "PTTL",
        "PUBLISH",
        "SUBSCRIBE",
    ];
    if KNOWN.contains(&name) {
        return format!(
            "ERR wrong number of arguments for '{}' command",
            name.to_lowercase()
        );
    }
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

fn integer(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

pub(crate) fn key(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

fn read(data: &kv::Bucket, key: &str) -> Result<Option<Stored>, String> {
    let raw = data.get(key).map_err(|err| err.to_string())?;
    Ok(raw.and_then(Stored::decode))
}

fn get(data: &kv::Bucket, arg: &[u8]) -> Result<Option<Vec<u8>>, String> {
    Ok(read(data, &key(arg))?.map(|stored| stored.value))
}

/// `SET key value [NX|XX] [EX s|PX ms|KEEPTTL]`.
fn set(data: &kv::Bucket, args: &[Vec<u8>], out: &mut Replies) -> Result<(), String> {
    let (name, value) = (key(&args[0]), args[1].clone());
    let (mut only_if, mut expires, mut keep_ttl) = (None, None, false);
    let mut options = args[2..].iter();
    while let Some(option) = options.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" if only_if.is_none() => only_if = Some(false),
            b"XX" if only_if.is_none() => only_if = Some(true),
            b"KEEPTTL" => keep_ttl = true,
            unit @ (b"EX" | b"PX") if expires.is_none() => {
                let Some(amount) = options
                    .next()
                    .and_then(|arg| integer(arg))
                    .filter(|n| *n > 0)
                else {
                    out.error("ERR invalid expire time in 'set' command");
                    return Ok(());
                };
                let millis = if unit == b"EX" {
                    amount.saturating_mul(1000)
                } else {
                    amount
                };
                expires = Some(now_millis().saturating_add(millis.unsigned_abs()));
            }
            _ => {
                out.error(SYNTAX);
                return Ok(());
            }
        }
    }
    if only_if.is_none() && !keep_ttl {
        let stored = Stored { value, expires };
        data.set(&name, &stored.encode())
            .map_err(|err| err.to_string())?;
        out.simple("OK");
        return Ok(());
    }
    // NX, XX and KEEPTTL look at the value first: a compare-and-swap.
    let mut refused = false;
    data.update(&name, |raw| {
        let current = raw.clone().and_then(Stored::decode);
        refused = match only_if {
            Some(must_exist) => current.is_some() != must_exist,
            None => false,
        };
        match (refused, raw) {
            (true, Some(raw)) => raw,
            _ => Stored {
                value: value.clone(),
                expires: expires.or(current.filter(|_| keep_ttl).and_then(|c| c.expires)),
            }
            .encode(),
        }
    })
    .map_err(|err| err.to_string())?;
    match refused {
        true => out.nil(),
        false => out.simple("OK"),
    }
    Ok(())
}

fn live_keys(data: &kv::Bucket, args: &[Vec<u8>]) -> Result<Vec<String>, String> {
    let names: Vec<String> = args.iter().map(|arg| key(arg)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let found = data.get_many(&refs).map_err(|err| err.to_string())?;
    Ok(names
        .into_iter()
        .zip(found)
        .filter(|(_, raw)| raw.clone().and_then(Stored::decode).is_some())
        .map(|(name, _)| name)
        .collect())
}

fn delete(data: &kv::Bucket, args: &[Vec<u8>]) -> Result<i64, String> {
    let live = live_keys(data, args)?;
    let all: Vec<String> = args.iter().map(|arg| key(arg)).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    data.delete_many(&refs).map_err(|err| err.to_string())?;
    Ok(live.len() as i64)
}

fn exists(data: &kv::Bucket, args: &[Vec<u8>]) -> Result<i64, String> {
    Ok(live_keys(data, args)?.len() as i64)
}

fn mget(data: &kv::Bucket, args: &[Vec<u8>], out: &mut Replies) -> Result<(), String> {
    let names: Vec<String> = args.iter().map(|arg| key(arg)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let found = data.get_many(&refs).map_err(|err| err.to_string())?;
    out.array(found.len());
    for raw in found {
        out.optional(raw.and_then(Stored::decode).map(|s| s.value).as_deref());
    }
    Ok(())
}

fn mset(data: &kv::Bucket, args: &[Vec<u8>]) -> Result<(), String> {
    let pairs: Vec<(String, Vec<u8>)> = args
        .chunks(2)
        .map(|pair| {
            (
                key(&pair[0]),
                Stored {
                    value: pair[1].clone(),
                    expires: None,
                }
                .encode(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    data.set_many(&refs).map_err(|err| err.to_string())
}

/// `INCRBY`: the host's atomic increment for a plain counter; a
/// compare-and-swap for a value with an expiry or set by `SET`.
fn add(data: &kv::Bucket, arg: &[u8], by: i64, out: &mut Replies) -> Result<(), String> {
    let name = key(arg);
    if let Ok(value) = data.increment(&name, by) {
        out.integer(value);
        return Ok(());
    }
    let mut result = Err(NOT_AN_INTEGER);
    data.update(&name, |raw| {
        let current = raw.clone().and_then(Stored::decode);
        let number = match &current {
            None => Some(0),
            Some(stored) => integer(&stored.value),
        };
        match number.and_then(|n| n.checked_add(by)) {
            Some(sum) => {
                result = Ok(sum);
                let expires = current.and_then(|c| c.expires);
                Stored {
                    value: sum.to_string().into_bytes(),
                    expires,
                }
                .encode()
            }
            None => {
                result = Err(NOT_AN_INTEGER);
                raw.unwrap_or_else(|| {
                    Stored {
                        value: b"0".to_vec(),
                        expires: None,
                    }
                    .encode()
                })
            }
        }
    })
    .map_err(|err| err.to_string())?;
    match result {
        Ok(sum) => out.integer(sum),
        Err(message) => out.error(message),
    }
    Ok(())
}

fn expire(data: &kv::Bucket, arg: &[u8], millis: i64) -> Result<bool, String> {
    let name = key(arg);
    if read(data, &name)?.is_none() {
        return Ok(false);
    }
    let deadline = now_millis().saturating_add_signed(millis);
    let mut set = false;
    data.update(&name, |raw| {
        let current = raw.clone().and_then(Stored::decode);
        set = current.is_some();
        match current {
            Some(stored) => Stored {
                expires: Some(deadline),
                ..stored
            }
            .encode(),
            None => raw.unwrap_or_default(),
        }
    })
    .map_err(|err| err.to_string())?;
    Ok(set)
}

/// `TTL`/`PTTL`: -2 for no key, -1 for no expiry.
fn ttl(data: &kv::Bucket, arg: &[u8], seconds: bool) -> Result<i64, String> {
    Ok(match read(data, &key(arg))? {
        None => -2,
        Some(Stored { expires: None, .. }) => -1,
        Some(Stored {
            expires: Some(deadline),
            ..
        }) => {
            let left = i64::try_from(deadline.saturating_sub(now_millis())).unwrap_or(i64::MAX);
            if seconds { (left + 999) / 1000 } else { left }
        }
    })
}
