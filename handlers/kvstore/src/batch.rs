//! Pipelined GETs and SETs gathered into one batch call.

use std::borrow::Cow;

use wasmserve_sdk::kv;

use crate::resp::Replies;

/// Consecutive pipelined GETs, or plain SETs, gathered into one `get-many`
/// or `set-many` call (the `wasi:keyvalue/batch` interface): a pipeline of
/// 16 GETs is one host call, not 16. Keys and values are borrowed from the
/// input they were parsed from.
#[derive(Default)]
pub(crate) enum Batch<'a> {
    #[default]
    Empty,
    Gets(Vec<Cow<'a, str>>),
    Sets(Vec<(Cow<'a, str>, &'a [u8])>),
}

impl<'a> Batch<'a> {
    /// Adds `args` if it is a GET or a SET without options (flushing a
    /// batch of the other kind first); `false` for any other command.
    /// `name` is `args[0]` upper-cased.
    pub(crate) fn take(
        &mut self,
        data: &kv::Bucket,
        name: &str,
        args: &[&'a [u8]],
        out: &mut Replies,
    ) -> bool {
        let key = |arg: &'a [u8]| String::from_utf8_lossy(arg);
        match (name, args.len(), &mut *self) {
            ("GET", 2, Batch::Gets(keys)) => keys.push(key(args[1])),
            ("GET", 2, _) => {
                self.flush(data, out);
                *self = Batch::Gets(vec![key(args[1])]);
            }
            ("SET", 3, Batch::Sets(pairs)) => pairs.push((key(args[1]), args[2])),
            ("SET", 3, _) => {
                self.flush(data, out);
                *self = Batch::Sets(vec![(key(args[1]), args[2])]);
            }
            _ => return false,
        }
        true
    }

    /// Runs what was gathered and appends one reply per command.
    pub(crate) fn flush(&mut self, data: &kv::Bucket, out: &mut Replies) {
        match std::mem::take(self) {
            Batch::Empty => {}
            // A batch of one (no pipelining) takes the single-key call:
            // no list of keys to lift, no key echoed back in the answer.
            Batch::Gets(keys) if keys.len() == 1 => match data.get(&keys[0]) {
                Ok(value) => out.optional(value.as_deref()),
                Err(err) => out.error(&format!("ERR {err}")),
            },
            Batch::Sets(pairs) if pairs.len() == 1 => match data.set(&pairs[0].0, pairs[0].1) {
                Ok(()) => out.simple("OK"),
                Err(err) => out.error(&format!("ERR {err}")),
            },
            Batch::Gets(keys) => {
                let refs: Vec<&str> = keys.iter().map(|key| &**key).collect();
                match data.get_many(&refs) {
                    Ok(found) => {
                        for value in found {
                            out.optional(value.as_deref());
                        }
                    }
                    Err(err) => keys.iter().for_each(|_| out.error(&format!("ERR {err}"))),
                }
            }
            Batch::Sets(pairs) => {
                let refs: Vec<(&str, &[u8])> =
                    pairs.iter().map(|(key, value)| (&**key, *value)).collect();
                match data.set_many(&refs) {
                    Ok(()) => pairs.iter().for_each(|_| out.simple("OK")),
                    Err(err) => pairs.iter().for_each(|_| out.error(&format!("ERR {err}"))),
                }
            }
        }
    }
}
