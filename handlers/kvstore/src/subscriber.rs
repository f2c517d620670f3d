//! SUBSCRIBE mode: the connection receives messages pushed from channels
//! while it still reads commands (more SUBSCRIBEs, UNSUBSCRIBE, PING).

use wasmserve_sdk::wasip2::io::poll::{self, Pollable};
use wasmserve_sdk::{Error, Request, channels};

use crate::READ_SIZE;
use crate::resp::Replies;

/// The channels this connection subscribed to.
#[derive(Default)]
pub(crate) struct Subscriber {
    subscriptions: Vec<channels::Subscription>,
}

impl Subscriber {
    pub(crate) fn is_active(&self) -> bool {
        !self.subscriptions.is_empty()
    }

    /// `SUBSCRIBE ch…` or `UNSUBSCRIBE [ch…]`.
    pub(crate) fn command(&mut self, args: &[&[u8]], out: &mut Replies) {
        let subscribe = args[0].eq_ignore_ascii_case(b"SUBSCRIBE");
        if subscribe && args.len() < 2 {
            out.error("ERR wrong number of arguments for 'subscribe' command");
            return;
        }
        let names: Vec<String> = match (subscribe, args.len()) {
            (false, 1) => self.subscriptions.iter().map(|s| s.topic()).collect(),
            _ => args[1..]
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        };
        for name in names {
            if subscribe {
                if !self.subscriptions.iter().any(|s| s.topic() == name) {
                    match channels::subscribe(&name) {
                        Ok(subscription) => self.subscriptions.push(subscription),
                        Err(err) => {
                            out.error(&format!("ERR {err}"));
                            continue;
                        }
                    }
                }
            } else {
                self.subscriptions.retain(|s| s.topic() != name);
            }
            out.array(3);
            out.bulk(if subscribe {
                b"subscribe"
            } else {
                b"unsubscribe"
            });
            out.bulk(name.as_bytes());
            out.integer(self.subscriptions.len() as i64);
        }
    }

    /// `PING` while subscribed.
    pub(crate) fn ping(&self, out: &mut Replies) {
        out.array(2);
        out.bulk(b"pong");
        out.bulk(b"");
    }

    /// Waits for the client or a message; forwards messages; returns what
    /// the client sent, if anything.
    pub(crate) fn wait(&self, request: &Request) -> Result<Option<Vec<u8>>, Error> {
        let readable = request.subscribe_readable();
        let messages: Vec<Pollable> = self.subscriptions.iter().map(|s| s.pollable()).collect();
        let mut all: Vec<&Pollable> = vec![&readable];
        all.extend(messages.iter());
        poll::poll(&all);
        let mut out = Replies(Vec::new());
        for subscription in &self.subscriptions {
            while let Some(message) = subscription.try_receive()? {
                out.array(3);
                out.bulk(b"message");
                out.bulk(message.topic.as_bytes());
                out.bulk(&message.payload);
            }
        }
        if !out.0.is_empty() {
            request.sendall(&out.0)?;
        }
        request.try_recv(READ_SIZE)
    }
}
