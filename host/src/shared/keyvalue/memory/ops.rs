//! The key-value operations on [`Buckets`], whichever backend holds
//! them: the memory backend runs them under its lock, the file backend
//! under its lock and then writes what they changed to its file.

use std::hash::{BuildHasher, RandomState};

use super::buckets::Buckets;
use crate::shared::keyvalue::keyspace::{
    Expiry, ExpiryCondition, RenameOutcome, ScanPage, WriteCondition, WriteExpiry, WriteOutcome,
    now_millis,
};
use crate::shared::keyvalue::{BucketId, Found, KvError, Swapped, incremented};

impl Buckets {
    pub(crate) fn get(&mut self, id: &BucketId, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.value(id, key, now_millis()))
    }

    pub(crate) fn exists(&mut self, id: &BucketId, key: &str) -> Result<bool, KvError> {
        Ok(self.is_live(id, key, now_millis()))
    }

    pub(crate) fn get_many(&mut self, id: &BucketId, keys: Vec<String>) -> Result<Found, KvError> {
        let now = now_millis();
        Ok(keys
            .into_iter()
            .map(|key| self.value(id, &key, now).map(|value| (key, value)))
            .collect())
    }

    pub(crate) fn set_many(
        &mut self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        max: u64,
    ) -> Result<(), KvError> {
        let writes = pairs
            .into_iter()
            .map(|(key, value)| (key, value, None))
            .collect();
        self.put_all(id, writes, max)
    }

    pub(crate) fn delete_many(&mut self, id: &BucketId, keys: Vec<String>) -> Result<(), KvError> {
        for key in keys {
            self.remove(id, &key);
        }
        Ok(())
    }

    pub(crate) fn list_keys(
        &mut self,
        id: &BucketId,
        cursor: u64,
        page: usize,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let Some(table) = self.table(id) else {
            return Ok((Vec::new(), None));
        };
        let (keys, next) = table.scan(cursor, page, None, now_millis());
        Ok((keys, (next != 0).then_some(next)))
    }

    pub(crate) fn increment(
        &mut self,
        id: &BucketId,
        key: &str,
        delta: i64,
        max: u64,
    ) -> Result<i64, KvError> {
        let now = now_millis();
        if let Some(incremented) = self.increment_live(id, key, delta, now, max) {
            return incremented;
        }
        let current = self.value_and_deadline(id, key, now);
        let expires = current.as_ref().and_then(|(_, expires)| *expires);
        let value = incremented(current.as_ref().map(|(value, _)| value.as_slice()), delta)?;
        self.put(id, key, value.to_string().into_bytes(), expires, max)?;
        Ok(value)
    }

    /// `increment-many`: each delta in order, under the one lock; each
    /// key's own outcome.
    pub(crate) fn increment_many(
        &mut self,
        id: &BucketId,
        deltas: Vec<(String, i64)>,
        max: u64,
    ) -> Result<Vec<Result<i64, KvError>>, KvError> {
        Ok(deltas
            .iter()
            .map(|(key, delta)| self.increment(id, key, *delta, max))
            .collect())
    }

    pub(crate) fn swap(
        &mut self,
        id: &BucketId,
        key: &str,
        seen: Option<Vec<u8>>,
        value: Vec<u8>,
        max: u64,
    ) -> Result<Swapped, KvError> {
        if self.value(id, key, now_millis()) != seen {
            return Ok(false);
        }
        self.put(id, key, value, None, max)?;
        Ok(true)
    }

    pub(crate) fn expiry(&mut self, id: &BucketId, key: &str) -> Result<Expiry, KvError> {
        Ok(match self.live(id, key, now_millis()) {
            None => Expiry::Absent,
            Some(entry) => entry.expires().map_or(Expiry::Persistent, Expiry::At),
        })
    }

    pub(crate) fn set_expiry(
        &mut self,
        id: &BucketId,
        key: &str,
        deadline: Option<u64>,
        condition: ExpiryCondition,
    ) -> Result<bool, KvError> {
        let now = now_millis();
        let Some(entry) = self.live(id, key, now) else {
            return Ok(false);
        };
        let current = entry.expires();
        if !condition.allows(current, deadline) || (deadline.is_none() && current.is_none()) {
            return Ok(false);
        }
        match deadline {
            Some(at) if at <= now => {
                self.remove(id, key);
            }
            _ => self.set_expires(id, key, deadline),
        }
        Ok(true)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the contract's `write` takes these"
    )]
    pub(crate) fn write(
        &mut self,
        id: &BucketId,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
        expiry: WriteExpiry,
        want_previous: bool,
        max: u64,
    ) -> Result<WriteOutcome, KvError> {
        let now = now_millis();
        let current = self.live(id, key, now);
        let allowed = condition.allows(current.map(|entry| entry.value.as_slice()));
        let expires = expiry.resolve(current.and_then(|entry| entry.expires()));
        let previous = match want_previous {
            true => current.map(|entry| entry.value.to_vec()),
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
                self.remove(id, key);
            }
            _ => self.put(id, key, value, expires, max)?,
        }
        Ok(WriteOutcome {
            written: true,
            previous,
        })
    }

    pub(crate) fn get_and_expire(
        &mut self,
        id: &BucketId,
        key: &str,
        deadline: Option<u64>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let now = now_millis();
        let Some(value) = self.value(id, key, now) else {
            return Ok(None);
        };
        match deadline {
            Some(at) if at <= now => {
                self.remove(id, key);
            }
            _ => self.set_expires(id, key, deadline),
        }
        Ok(Some(value))
    }

    pub(crate) fn take(&mut self, id: &BucketId, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let live = self.is_live(id, key, now_millis());
        Ok(live
            .then(|| self.remove(id, key))
            .flatten()
            .map(|entry| entry.value.into_vec()))
    }

    pub(crate) fn count(&mut self, id: &BucketId) -> Result<u64, KvError> {
        self.reclaim(now_millis(), usize::MAX);
        Ok(self.table(id).map_or(0, |table| table.len() as u64))
    }

    pub(crate) fn clear(&mut self, id: &BucketId) -> Result<(), KvError> {
        self.clear_table(id);
        Ok(())
    }

    pub(crate) fn scan(
        &mut self,
        id: &BucketId,
        cursor: u64,
        pattern: Option<String>,
        count: u32,
    ) -> Result<ScanPage, KvError> {
        let Some(table) = self.table(id) else {
            return Ok(ScanPage {
                keys: Vec::new(),
                cursor: 0,
            });
        };
        let pattern = pattern.as_ref().map(String::as_bytes);
        let (keys, cursor) = table.scan(cursor, count as usize, pattern, now_millis());
        Ok(ScanPage { keys, cursor })
    }

    pub(crate) fn random_key(&mut self, id: &BucketId) -> Result<Option<String>, KvError> {
        let now = now_millis();
        self.reclaim(now, usize::MAX);
        let random = RandomState::new().hash_one(now);
        Ok(self.table(id).and_then(|table| table.random(random, now)))
    }

    pub(crate) fn rename(
        &mut self,
        id: &BucketId,
        from: &str,
        to: &str,
        replace: bool,
        max: u64,
    ) -> Result<RenameOutcome, KvError> {
        let now = now_millis();
        if !self.is_live(id, from, now) {
            return Ok(RenameOutcome::NoSuchKey);
        }
        if from == to || (!replace && self.is_live(id, to, now)) {
            return Ok(match replace {
                true => RenameOutcome::Renamed,
                false => RenameOutcome::TargetExists,
            });
        }
        let Some(entry) = self.remove(id, from) else {
            return Ok(RenameOutcome::NoSuchKey);
        };
        let expires = entry.expires();
        if let Err(full) = self.put(id, to, entry.value.to_vec(), expires, max) {
            // Put back what was there: it fitted before.
            self.put(id, from, entry.value.into_vec(), expires, u64::MAX)?;
            return Err(full);
        }
        Ok(RenameOutcome::Renamed)
    }

    pub(crate) fn copy(
        &mut self,
        id: &BucketId,
        from: &str,
        to: &str,
        replace: bool,
        max: u64,
    ) -> Result<bool, KvError> {
        let now = now_millis();
        let Some((value, expires)) = self.value_and_deadline(id, from, now) else {
            return Ok(false);
        };
        if from == to || (!replace && self.is_live(id, to, now)) {
            return Ok(false);
        }
        self.put(id, to, value, expires, max)?;
        Ok(true)
    }

    pub(crate) fn set_many_if_none_exist(
        &mut self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        max: u64,
    ) -> Result<bool, KvError> {
        let now = now_millis();
        if pairs.iter().any(|(key, _)| self.is_live(id, key, now)) {
            return Ok(false);
        }
        let writes = pairs
            .into_iter()
            .map(|(key, value)| (key, value, None))
            .collect();
        self.put_all(id, writes, max)?;
        Ok(true)
    }
}
