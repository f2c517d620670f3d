//! The `memory` backend: buckets in the process's memory, gone at exit.
//! Every operation holds one lock for a map lookup and a copy. A thread
//! of its own deletes expired keys ten times a second (Redis's active
//! expiry), so their bytes leave the account without being read.

mod buckets;
mod table;

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use self::buckets::Buckets;
use super::keyspace::{
    Expiry, ExpiryCondition, RenameOutcome, ScanPage, WriteCondition, WriteExpiry, WriteOutcome,
    now_millis,
};
use super::{BucketId, Found, KvError, Swapped, incremented};

/// How often expired keys are reclaimed.
const RECLAIM_EVERY: Duration = Duration::from_millis(100);
/// Keys reclaimed per hold of the lock (the reclaimer lets others in
/// between batches).
const RECLAIM_BATCH: usize = 4096;

/// Every bucket of every service using `memory`.
#[derive(Debug)]
pub(crate) struct MemoryKv {
    inner: Arc<Mutex<Buckets>>,
}

impl Default for MemoryKv {
    fn default() -> Self {
        let inner = Arc::new(Mutex::new(Buckets::default()));
        let weak = Arc::downgrade(&inner);
        // Without the thread, expired keys still vanish when touched or
        // counted; they only hold their bytes longer.
        let _ = std::thread::Builder::new()
            .name("kv-expiry".into())
            .spawn(move || reclaim_while_alive(&weak));
        Self { inner }
    }
}

/// Reclaims expired keys until the store is dropped.
fn reclaim_while_alive(store: &Weak<Mutex<Buckets>>) {
    loop {
        std::thread::sleep(RECLAIM_EVERY);
        let Some(store) = store.upgrade() else {
            return;
        };
        let now = now_millis();
        while lock(&store).reclaim(now, RECLAIM_BATCH) == RECLAIM_BATCH {}
    }
}

fn lock(store: &Mutex<Buckets>) -> MutexGuard<'_, Buckets> {
    // A panic while holding the lock leaves whole maps behind: go on.
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryKv {
    fn lock(&self) -> MutexGuard<'_, Buckets> {
        lock(&self.inner)
    }

    pub(super) fn held(&self, account: &str) -> u64 {
        self.lock().held(account)
    }

    pub(super) fn get(&self, id: &BucketId, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock().value(id, key, now_millis()))
    }

    pub(super) fn exists(&self, id: &BucketId, key: &str) -> Result<bool, KvError> {
        Ok(self.lock().live(id, key, now_millis()).is_some())
    }

    pub(super) fn get_many(&self, id: &BucketId, keys: Vec<String>) -> Result<Found, KvError> {
        let mut buckets = self.lock();
        let now = now_millis();
        Ok(keys
            .into_iter()
            .map(|key| buckets.value(id, &key, now).map(|value| (key, value)))
            .collect())
    }

    pub(super) fn set_many(
        &self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        max: u64,
    ) -> Result<(), KvError> {
        let writes = pairs
            .into_iter()
            .map(|(key, value)| (key, value, None))
            .collect();
        self.lock().put_all(id, writes, max)
    }

    pub(super) fn delete_many(&self, id: &BucketId, keys: Vec<String>) -> Result<(), KvError> {
        let mut buckets = self.lock();
        for key in keys {
            buckets.remove(id, &key);
        }
        Ok(())
    }

    pub(super) fn list_keys(
        &self,
        id: &BucketId,
        cursor: u64,
        page: usize,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let buckets = self.lock();
        let Some(table) = buckets.table(id) else {
            return Ok((Vec::new(), None));
        };
        let (keys, next) = table.scan(cursor, page, None, now_millis());
        Ok((keys, (next != 0).then_some(next)))
    }

    pub(super) fn increment(
        &self,
        id: &BucketId,
        key: &str,
        delta: i64,
        max: u64,
    ) -> Result<i64, KvError> {
        let mut buckets = self.lock();
        let current = buckets.live(id, key, now_millis());
        let expires = current.and_then(|entry| entry.expires);
        let value = incremented(current.map(|entry| entry.value.as_slice()), delta)?;
        buckets.put(id, key, value.to_string().into_bytes(), expires, max)?;
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
        if buckets.value(id, key, now_millis()) != seen {
            return Ok(false);
        }
        buckets.put(id, key, value, None, max)?;
        Ok(true)
    }

    pub(super) fn expiry(&self, id: &BucketId, key: &str) -> Result<Expiry, KvError> {
        Ok(match self.lock().live(id, key, now_millis()) {
            None => Expiry::Absent,
            Some(entry) => entry.expires.map_or(Expiry::Persistent, Expiry::At),
        })
    }

    pub(super) fn set_expiry(
        &self,
        id: &BucketId,
        key: &str,
        deadline: Option<u64>,
        condition: ExpiryCondition,
    ) -> Result<bool, KvError> {
        let mut buckets = self.lock();
        let now = now_millis();
        let Some(entry) = buckets.live(id, key, now) else {
            return Ok(false);
        };
        let current = entry.expires;
        if !condition.allows(current, deadline) || (deadline.is_none() && current.is_none()) {
            return Ok(false);
        }
        match deadline {
            Some(at) if at <= now => {
                buckets.remove(id, key);
            }
            _ => buckets.set_expires(id, key, deadline),
        }
        Ok(true)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the contract's `write` takes these"
    )]
    pub(super) fn write(
        &self,
        id: &BucketId,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
        expiry: WriteExpiry,
        want_previous: bool,
        max: u64,
    ) -> Result<WriteOutcome, KvError> {
        let mut buckets = self.lock();
        let now = now_millis();
        let current = buckets.live(id, key, now);
        let allowed = condition.allows(current.map(|entry| entry.value.as_slice()));
        let expires = expiry.resolve(current.and_then(|entry| entry.expires));
        let previous = match want_previous {
            true => current.map(|entry| entry.value.clone()),
            false => None,
        };
        if !allowed {
            return Ok(WriteOutcome {
                written: false,
                previous,
            });
        }
        match expires {
            Some(at) if at <= now => {
                buckets.remove(id, key);
            }
            _ => buckets.put(id, key, value, expires, max)?,
        }
        Ok(WriteOutcome {
            written: true,
            previous,
        })
    }

    pub(super) fn get_and_expire(
        &self,
        id: &BucketId,
        key: &str,
        deadline: Option<u64>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let mut buckets = self.lock();
        let now = now_millis();
        let Some(value) = buckets.value(id, key, now) else {
            return Ok(None);
        };
        match deadline {
            Some(at) if at <= now => {
                buckets.remove(id, key);
            }
            _ => buckets.set_expires(id, key, deadline),
        }
        Ok(Some(value))
    }

    pub(super) fn take(&self, id: &BucketId, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let mut buckets = self.lock();
        let live = buckets.live(id, key, now_millis()).is_some();
        Ok(live
            .then(|| buckets.remove(id, key))
            .flatten()
            .map(|entry| entry.value))
    }

    pub(super) fn count(&self, id: &BucketId) -> Result<u64, KvError> {
        let mut buckets = self.lock();
        buckets.reclaim(now_millis(), usize::MAX);
        Ok(buckets.table(id).map_or(0, |table| table.len() as u64))
    }

    pub(super) fn clear(&self, id: &BucketId) -> Result<(), KvError> {
        self.lock().clear(id);
        Ok(())
    }

    pub(super) fn scan(
        &self,
        id: &BucketId,
        cursor: u64,
        pattern: Option<String>,
        count: u32,
    ) -> Result<ScanPage, KvError> {
        let buckets = self.lock();
        let Some(table) = buckets.table(id) else {
            return Ok(ScanPage {
                keys: Vec::new(),
                cursor: 0,
            });
        };
        let pattern = pattern.as_ref().map(String::as_bytes);
        let (keys, cursor) = table.scan(cursor, count as usize, pattern, now_millis());
        Ok(ScanPage { keys, cursor })
    }

    pub(super) fn random_key(&self, id: &BucketId) -> Result<Option<String>, KvError> {
        let mut buckets = self.lock();
        let now = now_millis();
        buckets.reclaim(now, usize::MAX);
        let random = RandomState::new().hash_one(now);
        Ok(buckets
            .table(id)
            .and_then(|table| table.random(random, now)))
    }

    pub(super) fn rename(
        &self,
        id: &BucketId,
        from: &str,
        to: &str,
        replace: bool,
        max: u64,
    ) -> Result<RenameOutcome, KvError> {
        let mut buckets = self.lock();
        let now = now_millis();
        if buckets.live(id, from, now).is_none() {
            return Ok(RenameOutcome::NoSuchKey);
        }
        if from == to || (!replace && buckets.live(id, to, now).is_some()) {
            return Ok(match replace {
                true => RenameOutcome::Renamed,
                false => RenameOutcome::TargetExists,
            });
        }
        let Some(entry) = buckets.remove(id, from) else {
            return Ok(RenameOutcome::NoSuchKey);
        };
        let expires = entry.expires;
        if let Err(full) = buckets.put(id, to, entry.value.clone(), expires, max) {
            // Put back what was there: it fitted before.
            buckets.put(id, from, entry.value, expires, u64::MAX)?;
            return Err(full);
        }
        Ok(RenameOutcome::Renamed)
    }

    pub(super) fn copy(
        &self,
        id: &BucketId,
        from: &str,
        to: &str,
        replace: bool,
        max: u64,
    ) -> Result<bool, KvError> {
        let mut buckets = self.lock();
        let now = now_millis();
        let Some((value, expires)) = buckets
            .live(id, from, now)
            .map(|entry| (entry.value.clone(), entry.expires))
        else {
            return Ok(false);
        };
        if from == to || (!replace && buckets.live(id, to, now).is_some()) {
            return Ok(false);
        }
        buckets.put(id, to, value, expires, max)?;
        Ok(true)
    }

    pub(super) fn set_many_if_none_exist(
        &self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        max: u64,
    ) -> Result<bool, KvError> {
        let mut buckets = self.lock();
        let now = now_millis();
        if pairs
            .iter()
            .any(|(key, _)| buckets.live(id, key, now).is_some())
        {
            return Ok(false);
        }
        let writes = pairs
            .into_iter()
            .map(|(key, value)| (key, value, None))
            .collect();
        buckets.put_all(id, writes, max)?;
        Ok(true)
    }
}
