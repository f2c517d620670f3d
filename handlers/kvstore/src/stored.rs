//! How values sit in the bucket: a tag byte, then an optional expiry, then
//! the bytes. Counters written by `increment` are plain decimal text (a
//! digit or `-` first), which the tags never are.

use std::time::{SystemTime, UNIX_EPOCH};

/// A value without expiry follows.
const PLAIN: u8 = 0;
/// An 8-byte big-endian expiry (Unix milliseconds) and the value follow.
const EXPIRING: u8 = 1;

/// A value read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) value: Vec<u8>,
    /// When it expires, in Unix milliseconds.
    pub(crate) expires: Option<u64>,
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

impl Stored {
    /// What `raw` holds, or `None` if it expired.
    pub(crate) fn decode(mut raw: Vec<u8>) -> Option<Self> {
        let stored = match raw.first() {
            Some(&PLAIN) => {
                raw.remove(0);
                Self {
                    value: raw,
                    expires: None,
                }
            }
            Some(&EXPIRING) if raw.len() >= 9 => {
                let mut deadline = [0; 8];
                deadline.copy_from_slice(&raw[1..9]);
                raw.drain(..9);
                Self {
                    value: raw,
                    expires: Some(u64::from_be_bytes(deadline)),
                }
            }
            _ => Self {
                value: raw,
                expires: None,
            },
        };
        match stored.expires {
            Some(deadline) if deadline <= now_millis() => None,
            _ => Some(stored),
        }
    }

    /// The bytes to store.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity(self.value.len() + 9);
        match self.expires {
            None => raw.push(PLAIN),
            Some(deadline) => {
                raw.push(EXPIRING);
                raw.extend_from_slice(&deadline.to_be_bytes());
            }
        }
        raw.extend_from_slice(&self.value);
        raw
    }
}
