//! One bucket of the memory backend: a hash map from key to entry (a
//! lookup costs the same among 10 keys or 10 million; a B-tree's string
//! comparisons made a GET among 100,000 keys twice a PING's CPU), and the
//! keys in the order they were first written, by a sequence number, for
//! scans: a key keeps its number while it exists, so a scan that goes by
//! number returns every key present for the whole scan, whatever is
//! written or deleted meanwhile (`SCAN`'s guarantee).
//!
//! Keys of up to 24 bytes and values of up to 16 are kept inside the hash
//! table's slot: a lookup among many keys then misses the cache on the
//! slot, not again on the key's bytes (to compare them) and the value's
//! (to read or increment it). With 100,000 keys, these were half of an
//! INCR's cache misses (bench/RESULTS.md).

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;

use compact_str::CompactString;
use smallvec::SmallVec;

use super::super::pattern::glob_matches;

/// A key: its bytes inline up to 24 of them.
pub(super) type Key = CompactString;

/// A value: its bytes inline up to [`INLINE_VALUE`] of them (an INCR
/// counter, a flag, a short token), on the heap beyond.
pub(super) type Value = SmallVec<[u8; INLINE_VALUE]>;

/// The longest value kept inside the slot.
const INLINE_VALUE: usize = 16;

/// `value` as the slot keeps it: inline when it is short enough, whatever
/// the capacity of the `Vec` it came in (`SmallVec::from_vec` goes by the
/// capacity).
fn stored_value(value: Vec<u8>) -> Value {
    match value.len() <= INLINE_VALUE {
        true => Value::from_slice(&value),
        false => Value::from_vec(value),
    }
}

/// A value, its deadline and its place in the scan order: with its key,
/// 64 bytes, one cache line of the hash table.
#[derive(Debug)]
pub(super) struct Entry {
    /// The bytes.
    pub(super) value: Value,
    /// When it expires, in Unix milliseconds (see [`deadline`]).
    expires: Option<NonZeroU64>,
    /// Its number in [`Table::order`].
    seq: u64,
}

impl Entry {
    /// When it expires, in Unix milliseconds.
    pub(super) fn expires(&self) -> Option<u64> {
        self.expires.map(NonZeroU64::get)
    }

    /// Whether it has expired by `now`.
    pub(super) fn expired(&self, now: u64) -> bool {
        self.expires().is_some_and(|at| at <= now)
    }
}

// A slot of the hash table is one cache line (see the module's comment).
const _: () = assert!(std::mem::size_of::<(Key, Entry)>() == 64);

/// A deadline as the store keeps it: 0 becomes 1 (both long past; a key
/// whose deadline has passed is deleted rather than written anyway), so
/// that an entry holds its deadline in 8 bytes. Every deadline goes
/// through this before it is stored or indexed.
pub(super) fn deadline(at: Option<u64>) -> Option<u64> {
    at.map(|at| at.max(1))
}

fn packed(at: Option<u64>) -> Option<NonZeroU64> {
    deadline(at).and_then(NonZeroU64::new)
}

/// One bucket's entries.
#[derive(Debug, Default)]
pub(super) struct Table {
    entries: HashMap<Key, Entry>,
    order: BTreeMap<u64, Key>,
    /// The number the next new key gets (0 is the scan's start).
    next_seq: u64,
}

impl Table {
    pub(super) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub(super) fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.get_mut(key)
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes `key`; returns the entry it replaced (whose place the key
    /// keeps).
    pub(super) fn put(&mut self, key: &str, value: Vec<u8>, expires: Option<u64>) -> Option<Entry> {
        let value = stored_value(value);
        if let Some(entry) = self.entries.get_mut(key) {
            let value = std::mem::replace(&mut entry.value, value);
            let old_expires = std::mem::replace(&mut entry.expires, packed(expires));
            return Some(Entry {
                value,
                expires: old_expires,
                seq: entry.seq,
            });
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        let key = Key::from(key);
        self.order.insert(seq, key.clone());
        self.entries.insert(
            key,
            Entry {
                value,
                expires: packed(expires),
                seq,
            },
        );
        None
    }

    /// Sets the deadline of an existing key; returns the one it had.
    pub(super) fn set_expires(&mut self, key: &str, expires: Option<u64>) -> Option<u64> {
        self.entries
            .get_mut(key)
            .and_then(|entry| std::mem::replace(&mut entry.expires, packed(expires)))
            .map(NonZeroU64::get)
    }

    pub(super) fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.order.remove(&entry.seq);
        Some(entry)
    }

    /// Every entry, for clearing the bucket.
    pub(super) fn drain(self) -> impl Iterator<Item = (Key, Entry)> {
        self.entries.into_iter()
    }

    /// Up to `count` keys from `cursor` on, those unexpired at `now` that
    /// match `pattern`; the next cursor (0 at the end).
    pub(super) fn scan(
        &self,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
        now: u64,
    ) -> (Vec<String>, u64) {
        let mut keys = Vec::new();
        let mut seen = self.order.range(cursor..);
        for (_, key) in seen.by_ref().take(count) {
            let live = self
                .entries
                .get(key)
                .is_some_and(|entry| !entry.expired(now));
            if live && pattern.is_none_or(|pattern| glob_matches(pattern, key.as_bytes())) {
                keys.push(key.to_string());
            }
        }
        let next = seen.next().map_or(0, |(seq, _)| *seq);
        (keys, next)
    }

    /// An unexpired key near the place `random` picks, if any.
    pub(super) fn random(&self, random: u64, now: u64) -> Option<String> {
        let (first, _) = self.order.first_key_value()?;
        let (last, _) = self.order.last_key_value()?;
        let start = first + random % (last - first + 1);
        self.order
            .range(start..)
            .chain(self.order.range(..start))
            .map(|(_, key)| key)
            .find(|key| {
                self.entries
                    .get(*key)
                    .is_some_and(|entry| !entry.expired(now))
            })
            .map(|key| key.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    /// Keys present for the whole scan come back, however many others are
    /// written and deleted between its pages.
    #[test]
    fn a_scan_returns_every_key_present_throughout_whatever_changes_between_pages() {
        let mut table = Table::default();
        for n in 0..1000 {
            table.put(&format!("stay{n}"), Vec::new(), None);
            table.put(&format!("go{n}"), Vec::new(), None);
        }
        let (mut seen, mut cursor, mut page) = (std::collections::BTreeSet::new(), 0, 0);
        loop {
            let (keys, next) = table.scan(cursor, 50, None, 0);
            seen.extend(keys);
            // Between pages: delete some keys, add new ones, rewrite others.
            for n in (page * 40)..(page * 40 + 40) {
                table.remove(&format!("go{n}"));
                table.put(&format!("new{page}-{n}"), Vec::new(), None);
                table.put(&format!("stay{}", (n * 7) % 1000), b"again".to_vec(), None);
            }
            page += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let missing: Vec<usize> = (0..1000)
            .filter(|n| !seen.contains(&format!("stay{n}")))
            .collect();
        assert!(missing.is_empty(), "never returned: {missing:?}");
    }

    #[test]
    fn a_scan_skips_expired_keys_and_filters_by_pattern() {
        let mut table = Table::default();
        table.put("user:1", Vec::new(), None);
        table.put("user:2", Vec::new(), Some(5));
        table.put("other", Vec::new(), None);
        let (keys, next) = table.scan(0, 10, Some(b"user:*"), 10);
        assert_eq!((keys, next), (vec!["user:1".to_owned()], 0));
    }
}
