//! The `file:PATH` backend: the memory backend's [`Buckets`] (so every
//! operation, expiry and scan behaves exactly alike), each change written
//! to one crash-safe `redb` database file before the operation answers
//! (copy-on-write B-trees; every write is a committed, fsynced
//! transaction, so a crash loses nothing acknowledged). As in Redis, the
//! keys live in memory too: the file is read whole at start, and
//! `--kv-max-bytes` bounds both.
//!
//! The file holds two tables: values by row (`BUCKET-FULL-NAME \0 KEY`)
//! and the deadlines of the rows that expire. Operations run on tokio's
//! blocking pool, never on a worker serving connections, holding the
//! buckets' lock while they write (so the file changes in the order the
//! buckets did); if a write fails, the keys it touched are read back from
//! the file, so memory never holds what the file does not.

mod ops;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::keyspace::now_millis;
use super::memory::{Buckets, RECLAIM_BATCH, lock, spawn_reclaimer};
use super::{BucketId, KvError};

/// Values; a row's key is `BUCKET-FULL-NAME \0 KEY`.
const VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("wasmserve-kv");
/// Deadlines (Unix milliseconds) of the rows that expire.
const DEADLINES: TableDefinition<&str, u64> = TableDefinition::new("wasmserve-kv-deadlines");

/// An open database file and its buckets in memory.
#[derive(Debug, Clone)]
pub(crate) struct FileKv {
    inner: Arc<FileStore>,
}

#[derive(Debug)]
struct FileStore {
    db: Database,
    buckets: Mutex<Buckets>,
}

/// A value and its deadline, as the file holds them.
type Stored = (Vec<u8>, Option<u64>);

fn backend_error(err: impl Into<redb::Error>) -> KvError {
    KvError::Backend(format!("state file: {}", err.into()))
}

fn row(full: &str, key: &str) -> String {
    format!("{full}\0{key}")
}

/// A row's bucket full name and key.
fn split_row(row: &str) -> Option<(&str, &str)> {
    row.split_once('\0')
}

impl FileKv {
    /// Opens (or creates) the database at `path` and reads its buckets,
    /// deleting the rows whose deadline has passed.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let shown = |err: redb::Error| format!("{}: {err}", path.display());
        let db = Database::create(path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => format!(
                "{}: another process has it open (one wasmserve per state file; use redis:// to share state between processes)",
                path.display()
            ),
            other => format!("{}: {other}", path.display()),
        })?;
        let mut buckets = Buckets::default();
        let now = now_millis();
        let txn = db.begin_write().map_err(|err| shown(err.into()))?;
        {
            let mut values = txn.open_table(VALUES).map_err(|err| shown(err.into()))?;
            let mut deadlines = txn.open_table(DEADLINES).map_err(|err| shown(err.into()))?;
            let mut expired = Vec::new();
            for entry in values.iter().map_err(|err| shown(err.into()))? {
                let (row, value) = entry.map_err(|err| shown(err.into()))?;
                let row = row.value();
                let expires = deadlines
                    .get(row)
                    .map_err(|err| shown(err.into()))?
                    .map(|at| at.value());
                match (split_row(row), expires) {
                    (_, Some(at)) if at <= now => expired.push(row.to_owned()),
                    (Some((full, key)), expires) => {
                        buckets.restore(&full.into(), key, Some((value.value().to_vec(), expires)));
                    }
                    (None, _) => {}
                }
            }
            for row in expired {
                values
                    .remove(row.as_str())
                    .map_err(|err| shown(err.into()))?;
                deadlines
                    .remove(row.as_str())
                    .map_err(|err| shown(err.into()))?;
            }
        }
        txn.commit().map_err(|err| shown(err.into()))?;
        let inner = Arc::new(FileStore {
            db,
            buckets: Mutex::new(buckets),
        });
        spawn_reclaimer(Arc::downgrade(&inner), |store| {
            let now = now_millis();
            loop {
                let reclaimed = store.changing(|buckets| Ok(buckets.reclaim(now, RECLAIM_BATCH)));
                if !matches!(reclaimed, Ok(RECLAIM_BATCH)) {
                    return;
                }
            }
        });
        Ok(Self { inner })
    }

    pub(super) fn held(&self, account: &str) -> u64 {
        lock(&self.inner.buckets).held(account)
    }

    /// Runs `change` on the buckets on the blocking pool, then writes what
    /// it changed to the file.
    async fn run<T: Send + 'static>(
        &self,
        id: &BucketId,
        change: impl FnOnce(&mut Buckets, &BucketId) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let (store, id) = (Arc::clone(&self.inner), id.clone());
        tokio::task::spawn_blocking(move || store.changing(|buckets| change(buckets, &id)))
            .await
            .map_err(|err| KvError::Backend(format!("state file: {err}")))?
    }
}

impl FileStore {
    fn buckets(&self) -> MutexGuard<'_, Buckets> {
        lock(&self.buckets)
    }

    /// Runs `change` under the lock, then writes the keys it touched.
    fn changing<T>(
        &self,
        change: impl FnOnce(&mut Buckets) -> Result<T, KvError>,
    ) -> Result<T, KvError> {
        let mut buckets = self.buckets();
        buckets.start_journal();
        let result = change(&mut buckets);
        let touched: BTreeSet<(Arc<str>, Box<str>)> = buckets.take_journal().into_iter().collect();
        if touched.is_empty() {
            return result;
        }
        if let Err(err) = self.write(&buckets, &touched) {
            self.reread(&mut buckets, &touched);
            return Err(err);
        }
        result
    }

    /// Writes the current state of `touched` keys in one transaction.
    fn write(
        &self,
        buckets: &Buckets,
        touched: &BTreeSet<(Arc<str>, Box<str>)>,
    ) -> Result<(), KvError> {
        let txn = self.db.begin_write().map_err(backend_error)?;
        {
            let mut values = txn.open_table(VALUES).map_err(backend_error)?;
            let mut deadlines = txn.open_table(DEADLINES).map_err(backend_error)?;
            for (full, key) in touched {
                let row = row(full, key);
                match buckets.stored(full, key) {
                    Some((value, expires)) => {
                        values.insert(row.as_str(), value).map_err(backend_error)?;
                        match expires {
                            Some(at) => deadlines.insert(row.as_str(), at),
                            None => deadlines.remove(row.as_str()),
                        }
                        .map_err(backend_error)?;
                    }
                    None => {
                        values.remove(row.as_str()).map_err(backend_error)?;
                        deadlines.remove(row.as_str()).map_err(backend_error)?;
                    }
                }
            }
        }
        txn.commit().map_err(backend_error)
    }

    /// Puts back in memory what the file holds for `touched` keys (after a
    /// failed write). A key that cannot be read is dropped from memory.
    fn reread(&self, buckets: &mut Buckets, touched: &BTreeSet<(Arc<str>, Box<str>)>) {
        let read = |full: &str, key: &str| -> Result<Option<Stored>, redb::Error> {
            let txn = self.db.begin_read()?;
            let values = txn.open_table(VALUES)?;
            let deadlines = txn.open_table(DEADLINES)?;
            let row = row(full, key);
            let Some(value) = values.get(row.as_str())? else {
                return Ok(None);
            };
            let expires = deadlines.get(row.as_str())?.map(|at| at.value());
            Ok(Some((value.value().to_vec(), expires)))
        };
        for (full, key) in touched {
            let stored = read(full, key).ok().flatten();
            buckets.restore(full, key, stored);
        }
        // The rereading itself changed nothing to write.
        buckets.take_journal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_deadlines_and_accounts_are_the_same_after_reopening() -> Result<(), KvError> {
        let path =
            std::env::temp_dir().join(format!("wasmserve-kv-reopen-{}.redb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let id = BucketId {
            account: "service/t".into(),
            full: "service/t/b".into(),
        };
        let later = now_millis() + 60_000;
        let held = {
            let kv = FileKv::open(&path).map_err(KvError::Backend)?;
            let pairs = vec![("a".to_owned(), vec![1; 10]), ("bb".to_owned(), Vec::new())];
            kv.set_many(&id, pairs, u64::MAX).await?;
            kv.delete_many(&id, vec!["a".to_owned()]).await?;
            let condition = super::super::ExpiryCondition::default();
            kv.set_expiry(&id, "bb", Some(later), condition).await?;
            kv.held("service/t")
        };
        let reopened = FileKv::open(&path).map_err(KvError::Backend)?;
        let expiry = reopened.expiry(&id, "bb").await?;
        let count = reopened.count(&id).await?;
        let held_again = reopened.held("service/t");
        drop(reopened);
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            held, held_again,
            "counted while running, then after reopening"
        );
        assert_eq!(expiry, super::super::Expiry::At(later));
        assert_eq!(count, 1);
        Ok(())
    }
}
