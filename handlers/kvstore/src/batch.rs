//! Pipelined GETs, SETs and counter steps gathered into one batch call.

use std::borrow::Cow;

use wasmserve_sdk::kv;

use crate::commands::counters;
use crate::resp::Replies;

/// Consecutive pipelined GETs, plain SETs, or INCR / DECR / INCRBY /
/// DECRBY, gathered into one `get-many`, `set-many` (the
/// `wasi:keyvalue/batch` interface) or `increment-many` (the contract's
/// `keyspace`) call: a pipeline of 16 GETs is one host call, not 16. Keys
/// and values are borrowed from the input they were parsed from.
#[derive(Default)]
pub(crate) enum Batch<'a> {
    #[default]
    Empty,
    Gets(Vec<Cow<'a, str>>),
    Sets(Vec<(Cow<'a, str>, &'a [u8])>),
    Increments(Vec<(Cow<'a, str>, i64)>),
}

/// The step of a well-formed INCR, DECR, INCRBY or DECRBY, with its
/// number of arguments; `None` for any other command, and for one whose
/// reply is an error: those take the single-command way, which answers it.
fn counter_step(name: &str, args: &[&[u8]]) -> Option<i64> {
    let fits = match name {
        "INCR" | "DECR" => args.len() == 2,
        "INCRBY" | "DECRBY" => args.len() == 3,
        _ => false,
    };
    if !fits {
        return None;
    }
    counters::step(name, &args[1..])?.ok()
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
            _ => {
                let Some(step) = counter_step(name, args) else {
                    return false;
                };
                match &mut *self {
                    Batch::Increments(steps) => steps.push((key(args[1]), step)),
                    _ => {
                        self.flush(data, out);
                        *self = Batch::Increments(vec![(key(args[1]), step)]);
                    }
                }
            }
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
            Batch::Increments(steps) if steps.len() == 1 => {
                counters::reply(data.increment(&steps[0].0, steps[0].1), out);
            }
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
            Batch::Increments(steps) => {
                let refs: Vec<(&str, i64)> =
                    steps.iter().map(|(key, step)| (&**key, *step)).collect();
                match data.increment_many(&refs) {
                    // One outcome per step, in order.
                    Ok(outcomes) if outcomes.len() == steps.len() => {
                        for outcome in outcomes {
                            counters::reply(outcome, out);
                        }
                    }
                    Ok(_) => steps.iter().for_each(|_| {
                        out.error("ERR the store answered a different number of steps")
                    }),
                    Err(err) => steps.iter().for_each(|_| out.error(&format!("ERR {err}"))),
                }
            }
        }
    }
}
