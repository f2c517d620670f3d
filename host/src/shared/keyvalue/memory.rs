//! The `memory` backend: buckets in the process's memory, gone at exit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;

use super::{BUCKET_OVERHEAD, BucketId, Found, KvError, Swapped, footprint, incremented};

/// Every bucket of every service using `memory`, behind one lock (each
/// operation holds it for a map lookup and a copy).
#[derive(Debug, Default)]
pub(crate) struct MemoryKv {
    inner: Mutex<Buckets>,
}

/// The buckets and the bytes each account holds. A bucket is a hash map
/// (a lookup costs the same among 10 keys or 10 million; a B-tree's string
/// comparisons made a GET among 100,000 keys twice a PING's CPU) that
/// keeps its keys in an order `list-keys` can page through by position:
/// insertion order, except that a deleted key's place goes to the last key.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    buckets: HashMap<Arc<str>, IndexMap<String, Vec<u8>>>,
    accounts: HashMap<Arc<str>, u64>,
}

impl Buckets {
    /// Writes `pairs` if the account stays within `max` bytes (or shrinks).
    fn write(
        &mut self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        max: u64,
    ) -> Result<(), KvError> {
        let held = self.accounts.get(&id.account).copied().unwrap_or(0);
        let bucket = self.buckets.get(&id.full);
        let mut total = held;
        if bucket.is_none() && !pairs.is_empty() {
            total += BUCKET_OVERHEAD;
        }
        for (key, value) in &pairs {
            let old = bucket
                .and_then(|bucket| bucket.get(key))
                .map_or(0, |old| footprint(&id.full, key, old));
            total = total.saturating_sub(old) + footprint(&id.full, key, value);
        }
        if total > max && total > held {
            return Err(KvError::Full {
                account: id.account.to_string(),
                held,
                max,
            });
        }
        let bucket = self.buckets.entry(Arc::clone(&id.full)).or_default();
        for (key, value) in pairs {
            bucket.insert(key, value);
        }
        self.accounts.insert(Arc::clone(&id.account), total);
        Ok(())
    }

    fn get(&self, id: &BucketId, key: &str) -> Option<&Vec<u8>> {
        self.buckets
            .get(&id.full)
            .and_then(|bucket| bucket.get(key))
    }
}

impl MemoryKv {
    fn lock(&self) -> MutexGuard<'_, Buckets> {
        // A panic while holding the lock leaves whole maps behind: go on.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn held(&self, account: &str) -> u64 {
        self.lock().accounts.get(account).copied().unwrap_or(0)
    }

    pub(super) fn get(&self, id: &BucketId, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock().get(id, key).cloned())
    }

    pub(super) fn exists(&self, id: &BucketId, key: &str) -> Result<bool, KvError> {
        Ok(self.lock().get(id, key).is_some())
    }

    pub(super) fn get_many(&self, id: &BucketId, keys: Vec<String>) -> Result<Found, KvError> {
        let buckets = self.lock();
        Ok(keys
            .into_iter()
            .map(|key| buckets.get(id, &key).cloned().map(|value| (key, value)))
            .collect())
    }

    pub(super) fn set_many(
        &self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        max: u64,
    ) -> Result<(), KvError> {
        self.lock().write(id, pairs, max)
    }

    pub(super) fn delete_many(&self, id: &BucketId, keys: Vec<String>) -> Result<(), KvError> {
        let mut buckets = self.lock();
        let Some(bucket) = buckets.buckets.get_mut(&id.full) else {
            return Ok(());
        };
        let mut freed = 0;
        for key in keys {
            if let Some(old) = bucket.swap_remove(&key) {
                freed += footprint(&id.full, &key, &old);
            }
        }
        if bucket.is_empty() {
            buckets.buckets.remove(&id.full);
            freed += BUCKET_OVERHEAD;
        }
        if let Some(held) = buckets.accounts.get_mut(&id.account) {
            *held = held.saturating_sub(freed);
        }
        Ok(())
    }

    pub(super) fn list_keys(
        &self,
        id: &BucketId,
        offset: u64,
        page: usize,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let buckets = self.lock();
        let Some(bucket) = buckets.buckets.get(&id.full) else {
            return Ok((Vec::new(), None));
        };
        let skip = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bucket.len());
        let end = skip.saturating_add(page).min(bucket.len());
        let keys: Vec<String> = bucket
            .get_range(skip..end)
            .map(|slice| slice.keys().cloned().collect())
            .unwrap_or_default();
        let next = skip.saturating_add(keys.len());
        let more = next < bucket.len();
        Ok((keys, more.then_some(next as u64)))
    }

    pub(super) fn increment(
        &self,
        id: &BucketId,
        key: &str,
        delta: i64,
        max: u64,
    ) -> Result<i64, KvError> {
        let mut buckets = self.lock();
        let value = incremented(buckets.get(id, key).map(Vec::as_slice), delta)?;
        buckets.write(
            id,
            vec![(key.to_owned(), value.to_string().into_bytes())],
            max,
        )?;
        Ok(value)
    }

    pub(super) fn swap(
        &self,
        id: &BucketId,
        key: &str,
        seen: Option<Vec<u8>>,
        value: Vec<u8>,
        max: u64,
    ) -> Result<Swapped, KvError> {
        let mut buckets = self.lock();
        if buckets.get(id, key) != seen.as_ref() {
            return Ok(false);
        }
        buckets.write(id, vec![(key.to_owned(), value)], max)?;
        Ok(true)
    }
}
