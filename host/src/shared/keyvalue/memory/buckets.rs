//! What the memory backend's lock guards: every bucket, the bytes each
//! account holds, and the deadlines of keys that expire, in order, so that
//! expired keys are reclaimed (and stop counting against the cap) without
//! anyone reading them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::super::{BUCKET_OVERHEAD, BucketId, KvError, footprint, incremented};
use super::table::{Entry, Table, deadline};

/// A deadline: when, the bucket's full name, the key.
type Deadline = (u64, Arc<str>, Box<str>);

/// The state behind the memory backend's lock.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    tables: HashMap<Arc<str>, Table>,
    accounts: HashMap<Arc<str>, u64>,
    deadlines: BTreeSet<Deadline>,
    /// The keys changed since [`Self::start_journal`], when a backend that
    /// persists them asked (the file backend).
    journal: Option<Vec<(Arc<str>, Box<str>)>>,
}

/// The account a bucket's full name (`ACCOUNT/BUCKET`) belongs to.
fn account_of(full: &str) -> &str {
    full.rsplit_once('/').map_or(full, |(account, _)| account)
}

impl Buckets {
    /// Starts noting every key a change touches.
    pub(crate) fn start_journal(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// The keys changed since [`Self::start_journal`] (bucket full name,
    /// key), and stops noting.
    pub(crate) fn take_journal(&mut self) -> Vec<(Arc<str>, Box<str>)> {
        self.journal.take().unwrap_or_default()
    }

    fn note(&mut self, full: &Arc<str>, key: &str) {
        if let Some(journal) = &mut self.journal {
            journal.push((Arc::clone(full), key.into()));
        }
    }

    pub(crate) fn held(&self, account: &str) -> u64 {
        self.accounts.get(account).copied().unwrap_or(0)
    }

    pub(super) fn table(&self, id: &BucketId) -> Option<&Table> {
        self.tables.get(&id.full)
    }

    /// The entry at `key` unless it has expired by `now` (an expired one is
    /// reclaimed here).
    pub(super) fn live(&mut self, id: &BucketId, key: &str, now: u64) -> Option<&Entry> {
        let expired = self.table(id)?.get(key)?.expired(now);
        if expired {
            self.remove(id, key);
            return None;
        }
        self.table(id)?.get(key)
    }

    /// The value and deadline at `key` unless it has expired by `now`: one
    /// lookup (these are the hot paths: GET, INCR).
    pub(super) fn value_and_deadline(
        &mut self,
        id: &BucketId,
        key: &str,
        now: u64,
    ) -> Option<(Vec<u8>, Option<u64>)> {
        match self.table(id)?.get(key) {
            Some(entry) if !entry.expired(now) => {
                return Some((entry.value.to_vec(), entry.expires()));
            }
            Some(_) => {}
            None => return None,
        }
        self.remove(id, key);
        None
    }

    /// The value at `key` unless it has expired by `now` (one lookup).
    pub(super) fn value(&mut self, id: &BucketId, key: &str, now: u64) -> Option<Vec<u8>> {
        self.value_and_deadline(id, key, now)
            .map(|(value, _)| value)
    }

    /// Whether `key` is there and unexpired at `now` (one lookup).
    pub(super) fn is_live(&mut self, id: &BucketId, key: &str, now: u64) -> bool {
        match self.table(id).and_then(|table| table.get(key)) {
            Some(entry) if !entry.expired(now) => return true,
            Some(_) => {}
            None => return false,
        }
        self.remove(id, key);
        false
    }

    /// Writes every `(key, value, deadline)` if the account stays within
    /// `max` bytes (or shrinks).
    pub(super) fn put_all(
        &mut self,
        id: &BucketId,
        mut writes: Vec<(String, Vec<u8>, Option<u64>)>,
        max: u64,
    ) -> Result<(), KvError> {
        if writes.len() > 1 {
            // A key given twice is written once, with its last value.
            let mut seen = std::collections::HashSet::new();
            writes.reverse();
            writes.retain(|(key, _, _)| seen.insert(key.clone()));
            writes.reverse();
        }
        let held = self.held(&id.account);
        let table = self.tables.get(&id.full);
        let mut total = held;
        if table.is_none() && !writes.is_empty() {
            total += BUCKET_OVERHEAD;
        }
        for (key, value, _) in &writes {
            let old = table
                .and_then(|table| table.get(key))
                .map_or(0, |old| footprint(&id.full, key, &old.value));
            total = total.saturating_sub(old) + footprint(&id.full, key, value);
        }
        within_cap(&id.account, held, total, max)?;
        if self.journal.is_some() {
            for (key, _, _) in &writes {
                self.note(&id.full, key);
            }
        }
        let table = self.tables.entry(Arc::clone(&id.full)).or_default();
        for (key, value, expires) in writes {
            let expires = deadline(expires);
            let old = table.put(&key, value, expires);
            let old_expires = old.and_then(|old| old.expires());
            if old_expires != expires {
                if let Some(at) = old_expires {
                    self.deadlines
                        .remove(&(at, Arc::clone(&id.full), key.as_str().into()));
                }
                if let Some(at) = expires {
                    self.deadlines
                        .insert((at, Arc::clone(&id.full), key.into()));
                }
            }
        }
        self.accounts.insert(Arc::clone(&id.account), total);
        Ok(())
    }

    /// Adds `delta` to the integer at `key` where it is live at `now`, in
    /// place: one lookup of the bucket, one of the key, one of the account
    /// (INCR's hot path; [`Self::put`] would look each up again, and copy
    /// the key). `None` when the key is missing or expired, for the caller
    /// to take the general way.
    pub(super) fn increment_live(
        &mut self,
        id: &BucketId,
        key: &str,
        delta: i64,
        now: u64,
        max: u64,
    ) -> Option<Result<i64, KvError>> {
        let entry = self.tables.get_mut(&id.full)?.get_mut(key)?;
        if entry.expired(now) {
            return None;
        }
        let value = match incremented(Some(&entry.value), delta) {
            Ok(value) => value,
            Err(err) => return Some(Err(err)),
        };
        let mut text = itoa::Buffer::new();
        let text = text.format(value).as_bytes();
        let held = self.accounts.get(&*id.account).copied().unwrap_or(0);
        let total = (held + text.len() as u64).saturating_sub(entry.value.len() as u64);
        if let Err(full) = within_cap(&id.account, held, total, max) {
            return Some(Err(full));
        }
        entry.value.clear();
        entry.value.extend_from_slice(text);
        if total != held {
            self.accounts.insert(Arc::clone(&id.account), total);
        }
        self.note(&id.full, key);
        Some(Ok(value))
    }

    /// Writes one key (see [`Self::put_all`]).
    pub(super) fn put(
        &mut self,
        id: &BucketId,
        key: &str,
        value: Vec<u8>,
        expires: Option<u64>,
        max: u64,
    ) -> Result<(), KvError> {
        self.put_all(id, vec![(key.to_owned(), value, expires)], max)
    }

    /// Changes the deadline of an existing key.
    pub(super) fn set_expires(&mut self, id: &BucketId, key: &str, expires: Option<u64>) {
        let Some(table) = self.tables.get_mut(&id.full) else {
            return;
        };
        let expires = deadline(expires);
        let old = table.set_expires(key, expires);
        self.note(&id.full, key);
        if old != expires {
            if let Some(at) = old {
                self.deadlines
                    .remove(&(at, Arc::clone(&id.full), key.into()));
            }
            if let Some(at) = expires {
                self.deadlines
                    .insert((at, Arc::clone(&id.full), key.into()));
            }
        }
    }

    /// The value and deadline stored at `key` of the bucket `full`, expired
    /// or not (what the file backend writes).
    pub(crate) fn stored(&self, full: &str, key: &str) -> Option<(&[u8], Option<u64>)> {
        let entry = self.tables.get(full)?.get(key)?;
        Some((entry.value.as_slice(), entry.expires()))
    }

    /// Puts back what the file holds for `key` of the bucket `full` (a
    /// value and a deadline, or nothing), whatever the cap.
    pub(crate) fn restore(
        &mut self,
        full: &Arc<str>,
        key: &str,
        stored: Option<(Vec<u8>, Option<u64>)>,
    ) {
        let id = BucketId {
            account: account_of(full).into(),
            full: Arc::clone(full),
        };
        let _ = match stored {
            Some((value, expires)) => self.put(&id, key, value, expires, u64::MAX),
            None => {
                self.remove(&id, key);
                Ok(())
            }
        };
    }

    /// Deletes `key`, giving its bytes back to the account.
    pub(super) fn remove(&mut self, id: &BucketId, key: &str) -> Option<Entry> {
        self.forget(&id.full, key)
    }

    fn forget(&mut self, full: &Arc<str>, key: &str) -> Option<Entry> {
        let table = self.tables.get_mut(full)?;
        let old = table.remove(key)?;
        let mut freed = footprint(full, key, &old.value);
        if let Some(journal) = &mut self.journal {
            journal.push((Arc::clone(full), key.into()));
        }
        if table.is_empty() {
            self.tables.remove(full);
            freed += BUCKET_OVERHEAD;
        }
        if let Some(at) = old.expires() {
            self.deadlines.remove(&(at, Arc::clone(full), key.into()));
        }
        if let Some(held) = self.accounts.get_mut(account_of(full)) {
            *held = held.saturating_sub(freed);
        }
        Some(old)
    }

    /// Deletes every key of the bucket.
    pub(super) fn clear_table(&mut self, id: &BucketId) {
        let Some(table) = self.tables.remove(&id.full) else {
            return;
        };
        let mut freed = BUCKET_OVERHEAD;
        for (key, entry) in table.drain() {
            freed += footprint(&id.full, &key, &entry.value);
            self.note(&id.full, &key);
            if let Some(at) = entry.expires() {
                self.deadlines
                    .remove(&(at, Arc::clone(&id.full), (*key).into()));
            }
        }
        if let Some(held) = self.accounts.get_mut(&id.account) {
            *held = held.saturating_sub(freed);
        }
    }

    /// Deletes up to `limit` keys whose deadline is at or before `now`;
    /// how many it deleted.
    pub(crate) fn reclaim(&mut self, now: u64, limit: usize) -> usize {
        let mut reclaimed = 0;
        while reclaimed < limit {
            let due = self.deadlines.first().is_some_and(|(at, _, _)| *at <= now);
            if !due {
                break;
            }
            let Some((_, full, key)) = self.deadlines.pop_first() else {
                break;
            };
            self.forget(&full, &key);
            reclaimed += 1;
        }
        reclaimed
    }
}

/// Refuses a write that would bring `account` from `held` bytes to `total`,
/// past its cap `max` (a write that shrinks what it holds always passes).
fn within_cap(account: &str, held: u64, total: u64, max: u64) -> Result<(), KvError> {
    if total > max && total > held {
        return Err(KvError::Full {
            account: account.to_owned(),
            held,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// INCR's in-place way books what the counter grows by, refuses what
    /// would pass the cap, keeps the deadline, and leaves expired keys to
    /// the general way.
    #[test]
    fn a_counter_incremented_in_place_is_booked_and_capped_like_a_write() {
        let id = BucketId {
            account: "service/t".into(),
            full: "service/t/b".into(),
        };
        let mut buckets = Buckets::default();
        let put = buckets.put(&id, "n", b"9".to_vec(), Some(1_000), u64::MAX);
        assert!(put.is_ok());
        let held = buckets.held("service/t");
        let ten = buckets.increment_live(&id, "n", 1, 10, u64::MAX);
        assert!(matches!(ten, Some(Ok(10))));
        assert_eq!(buckets.held("service/t"), held + 1, "one digit more");
        assert_eq!(
            buckets.stored("service/t/b", "n"),
            Some((&b"10"[..], Some(1_000)))
        );
        let full = buckets.increment_live(&id, "n", 90, 10, held + 1);
        assert!(matches!(full, Some(Err(KvError::Full { .. }))));
        assert_eq!(
            buckets.stored("service/t/b", "n"),
            Some((&b"10"[..], Some(1_000)))
        );
        let fewer = buckets.increment_live(&id, "n", -5, 10, held);
        assert!(
            matches!(fewer, Some(Ok(5))),
            "a shorter counter always fits"
        );
        assert_eq!(buckets.held("service/t"), held);
        assert!(
            buckets
                .increment_live(&id, "n", 1, 1_000, u64::MAX)
                .is_none()
        );
        assert!(
            buckets
                .increment_live(&id, "absent", 1, 10, u64::MAX)
                .is_none()
        );
    }
}
