//! The `file:PATH` backend: buckets in one crash-safe `redb` database file
//! (copy-on-write B-trees; every write is a committed, fsynced
//! transaction, so a crash loses nothing acknowledged).
//!
//! redb's calls block on disk, so each runs on tokio's blocking pool, never
//! on a worker serving connections.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{BucketId, Found, KvError, Swapped, footprint, incremented, row_footprint};

/// One table; a row's key is `BUCKET-FULL-NAME \0 KEY`.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("wasmserve-kv");

/// An open database file and the bytes each account holds in it.
#[derive(Debug, Clone)]
pub(crate) struct FileKv {
    db: Arc<Database>,
    /// Held across every write transaction: writes are serial in redb
    /// anyway, and the account totals stay exact.
    accounts: Arc<Mutex<HashMap<String, u64>>>,
}

fn backend_error(err: impl Into<redb::Error>) -> KvError {
    KvError::Backend(format!("state file: {}", err.into()))
}

fn row(id: &BucketId, key: &str) -> String {
    format!("{}\0{key}", id.full)
}

/// The account a row belongs to: its bucket's full name up to the last `/`.
fn account_of(row: &str) -> Option<&str> {
    let bucket = row.split('\0').next()?;
    bucket.rsplit_once('/').map(|(account, _)| account)
}

impl FileKv {
    /// Opens (or creates) the database at `path` and counts what each
    /// account holds.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let db = Database::create(path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => format!(
                "{}: another process has it open (one wasmserve per state file; use redis:// to share state between processes)",
                path.display()
            ),
            other => format!("{}: {other}", path.display()),
        })?;
        let mut accounts: HashMap<String, u64> = HashMap::new();
        let txn = db
            .begin_write()
            .map_err(|err| format!("{}: {err}", path.display()))?;
        {
            let table = txn
                .open_table(TABLE)
                .map_err(|err| format!("{}: {err}", path.display()))?;
            let rows = table
                .iter()
                .map_err(|err| format!("{}: {err}", path.display()))?;
            for entry in rows {
                let (key, value) = entry.map_err(|err| format!("{}: {err}", path.display()))?;
                if let Some(account) = account_of(key.value()) {
                    let bytes = row_footprint(key.value().len(), value.value());
                    *accounts.entry(account.to_owned()).or_default() += bytes;
                }
            }
        }
        txn.commit()
            .map_err(|err| format!("{}: {err}", path.display()))?;
        Ok(Self {
            db: Arc::new(db),
            accounts: Arc::new(Mutex::new(accounts)),
        })
    }

    fn accounts(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.accounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn held(&self, account: &str) -> u64 {
        self.accounts().get(account).copied().unwrap_or(0)
    }

    /// Runs `work` on the blocking pool.
    async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce(FileKv) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(this))
            .await
            .map_err(|err| KvError::Backend(format!("state file: {err}")))?
    }

    /// One write transaction: `change` gets the table and the account's
    /// bytes, returns the new total (checked against `max` unless it
    /// shrank) and a result.
    fn transact<T>(
        &self,
        id: &BucketId,
        max: u64,
        change: impl FnOnce(&mut redb::Table<&str, &[u8]>, u64) -> Result<(u64, T), KvError>,
    ) -> Result<T, KvError> {
        let mut accounts = self.accounts();
        let held = accounts.get(&*id.account).copied().unwrap_or(0);
        let txn = self.db.begin_write().map_err(backend_error)?;
        let (total, out) = {
            let mut table = txn.open_table(TABLE).map_err(backend_error)?;
            change(&mut table, held)?
        };
        if total > max && total > held {
            txn.abort().map_err(backend_error)?;
            return Err(KvError::Full {
                account: id.account.to_string(),
                held,
                max,
            });
        }
        txn.commit().map_err(backend_error)?;
        accounts.insert(id.account.to_string(), total);
        Ok(out)
    }

    fn read<T>(
        &self,
        look: impl FnOnce(&redb::ReadOnlyTable<&str, &[u8]>) -> Result<T, redb::Error>,
    ) -> Result<T, KvError> {
        let txn = self.db.begin_read().map_err(backend_error)?;
        let table = txn.open_table(TABLE).map_err(backend_error)?;
        look(&table).map_err(backend_error)
    }

    pub(super) async fn get(&self, id: &BucketId, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let row = row(id, key);
        self.off_runtime(move |kv| {
            kv.read(|table| Ok(table.get(row.as_str())?.map(|v| v.value().to_vec())))
        })
        .await
    }

    pub(super) async fn exists(&self, id: &BucketId, key: &str) -> Result<bool, KvError> {
        Ok(self.get(id, key).await?.is_some())
    }

    pub(super) async fn get_many(
        &self,
        id: &BucketId,
        keys: Vec<String>,
    ) -> Result<Found, KvError> {
        let id = id.clone();
        self.off_runtime(move |kv| {
            kv.read(|table| {
                let mut found = Vec::with_capacity(keys.len());
                for key in keys {
                    let value = table.get(row(&id, &key).as_str())?;
                    found.push(value.map(|v| (key, v.value().to_vec())));
                }
                Ok(found)
            })
        })
        .await
    }

    pub(super) async fn set_many(
        &self,
        id: &BucketId,
        pairs: Vec<(String, Vec<u8>)>,
        max: u64,
    ) -> Result<(), KvError> {
        let id = id.clone();
        self.off_runtime(move |kv| {
            kv.transact(&id, max, |table, mut total| {
                for (key, value) in &pairs {
                    let old = table
                        .insert(row(&id, key).as_str(), value.as_slice())
                        .map_err(backend_error)?
                        .map_or(0, |old| footprint(&id.full, key, old.value()));
                    total = total.saturating_sub(old) + footprint(&id.full, key, value);
                }
                Ok((total, ()))
            })
        })
        .await
    }

    pub(super) async fn delete_many(
        &self,
        id: &BucketId,
        keys: Vec<String>,
    ) -> Result<(), KvError> {
        let id = id.clone();
        self.off_runtime(move |kv| {
            kv.transact(&id, u64::MAX, |table, mut total| {
                for key in &keys {
                    if let Some(old) = table
                        .remove(row(&id, key).as_str())
                        .map_err(backend_error)?
                    {
                        total = total.saturating_sub(footprint(&id.full, key, old.value()));
                    }
                }
                Ok((total, ()))
            })
        })
        .await
    }

    pub(super) async fn list_keys(
        &self,
        id: &BucketId,
        offset: u64,
        page: usize,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let (start, end) = (format!("{}\0", id.full), format!("{}\u{1}", id.full));
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        self.off_runtime(move |kv| {
            kv.read(|table| {
                let mut keys = Vec::new();
                let mut rows = table.range(start.as_str()..end.as_str())?.skip(skip);
                for entry in rows.by_ref().take(page) {
                    let (row, _) = entry?;
                    keys.push(row.value()[start.len()..].to_owned());
                }
                let more = rows.next().is_some();
                let next = (skip + keys.len()) as u64;
                Ok((keys, more.then_some(next)))
            })
        })
        .await
    }

    /// Reads `key` and, if `decide` gives a new value, writes it, in one
    /// write transaction (so no other writer comes between).
    async fn read_modify_write<T: Send + 'static>(
        &self,
        id: &BucketId,
        key: &str,
        max: u64,
        decide: impl FnOnce(Option<&[u8]>) -> Result<(Option<Vec<u8>>, T), KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let (id, key) = (id.clone(), key.to_owned());
        self.off_runtime(move |kv| {
            kv.transact(&id, max, |table, held| {
                let row = row(&id, &key);
                let old = table
                    .get(row.as_str())
                    .map_err(backend_error)?
                    .map(|v| v.value().to_vec());
                let (new, out) = decide(old.as_deref())?;
                let Some(new) = new else {
                    return Ok((held, out));
                };
                table
                    .insert(row.as_str(), new.as_slice())
                    .map_err(backend_error)?;
                let old_bytes = old.map_or(0, |old| footprint(&id.full, &key, &old));
                Ok((
                    held.saturating_sub(old_bytes) + footprint(&id.full, &key, &new),
                    out,
                ))
            })
        })
        .await
    }

    pub(super) async fn increment(
        &self,
        id: &BucketId,
        key: &str,
        delta: i64,
        max: u64,
    ) -> Result<i64, KvError> {
        self.read_modify_write(id, key, max, move |old| {
            let value = incremented(old, delta)?;
            Ok((Some(value.to_string().into_bytes()), value))
        })
        .await
    }

    pub(super) async fn swap(
        &self,
        id: &BucketId,
        key: &str,
        seen: Option<Vec<u8>>,
        value: Vec<u8>,
        max: u64,
    ) -> Result<Swapped, KvError> {
        self.read_modify_write(id, key, max, move |old| match old == seen.as_deref() {
            true => Ok((Some(value), true)),
            false => Ok((None, false)),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_account_counts_the_same_after_reopening() -> Result<(), KvError> {
        let path =
            std::env::temp_dir().join(format!("wasmserve-kv-reopen-{}.redb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let id = BucketId {
            account: "service/t".into(),
            full: "service/t/b".into(),
        };
        let held = {
            let kv = FileKv::open(&path).map_err(KvError::Backend)?;
            let pairs = vec![("a".to_owned(), vec![1; 10]), ("bb".to_owned(), Vec::new())];
            kv.set_many(&id, pairs, u64::MAX).await?;
            kv.delete_many(&id, vec!["a".to_owned()]).await?;
            kv.held("service/t")
        };
        let reopened = FileKv::open(&path)
            .map_err(KvError::Backend)?
            .held("service/t");
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            held, reopened,
            "counted while running, then after reopening"
        );
        assert_eq!(held, footprint("service/t/b", "bb", &[]));
        Ok(())
    }
}
