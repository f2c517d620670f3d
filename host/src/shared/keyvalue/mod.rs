//! `wasi:keyvalue` buckets over one of three backends. [`ServiceStore`] is
//! a service's view (its own buckets and the shared ones, its limits, its
//! observer); [`Bucket`] an opened bucket; the backends only store bytes
//! under a bucket's full name.
//!
//! Counters (`increment`) are stored as their decimal text, as Redis does,
//! so every backend reads them back alike and `get` returns `b"42"`.

/// Calls the same method on whichever backend this is.
///
/// The file and Redis backends' futures are boxed: held inline, the
/// largest of them (a Redis round trip's) would set the size of every
/// operation's future, which the guest's host call copies whole each time,
/// also for the memory backend that never waits (`memmove` was 4 to 5 % of a
/// pipelined INCR's CPU).
macro_rules! on_backend {
    ($backend:expr, $method:ident($($arg:expr),*)) => {
        match $backend {
            KvBackend::Memory(kv) => kv.lock().$method($($arg),*),
            KvBackend::File(kv) => Box::pin(kv.$method($($arg),*)).await,
            KvBackend::Redis(kv) => Box::pin(kv.$method($($arg),*)).await,
        }
    };
}

mod file;
mod keyspace;
mod memory;
mod pattern;
mod redis;
mod redis_keyspace;

use std::collections::BTreeSet;
use std::sync::Arc;

pub(super) use self::file::FileKv;
pub(crate) use self::keyspace::{
    Expiry, ExpiryCondition, RenameOutcome, WriteCondition, WriteExpiry,
};
pub(super) use self::memory::MemoryKv;
pub(super) use self::redis::{REDIS_TIMEOUT, RedisKv, manager_config, query};
use super::limits::StateLimits;
use super::observer::{KvOp, StateObserver};
use super::spec::space_of;

/// Keys listed per `list-keys` call.
const KEYS_PER_PAGE: usize = 1000;

/// Why a key-value operation failed; the guest gets the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KvError {
    /// A bucket name the host refuses.
    #[error("no bucket {0:?}: names are 1 to 64 letters, digits, '-', '_' or '.'")]
    NoSuchBucket(String),
    /// A key over the limit.
    #[error("key of {len} bytes is over the limit of {max} (--kv-max-key)")]
    KeyTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value over the limit.
    #[error("value of {len} bytes is over the limit of {max} (--kv-max-value)")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The account is full.
    #[error("the store is full: {account} holds {held} of {max} bytes (--kv-max-bytes)")]
    Full {
        /// Whose bytes.
        account: String,
        /// What it holds now.
        held: u64,
        /// The limit.
        max: u64,
    },
    /// `increment` on a value that is not a decimal integer.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// `increment` whose sum does not fit a signed 64-bit integer (Redis's
    /// words, which kvstore answers with).
    #[error("increment or decrement would overflow")]
    Overflow,
    /// The backend failed or cannot be reached.
    #[error("{0}")]
    Backend(String),
}

/// A bucket's place in a backend: its account (the service's space or the
/// shared one) and its full name within the backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct BucketId {
    /// Whose bytes these are: `service/NAME` or `shared`.
    pub(super) account: Arc<str>,
    /// `ACCOUNT/BUCKET`, unique in the backend.
    pub(super) full: Arc<str>,
}

/// The backend behind a service's buckets.
#[derive(Debug)]
pub(super) enum KvBackend {
    /// `memory`.
    Memory(MemoryKv),
    /// `file:PATH`.
    File(FileKv),
    /// `redis://`.
    Redis(RedisKv),
}

/// What `get-many` finds: each key asked, with its value, or `None`.
pub(crate) type Found = Vec<Option<(String, Vec<u8>)>>;

/// The outcome of a compare-and-swap.
pub(crate) type Swapped = bool;

/// A service's view of the key-value backend.
#[derive(Debug, Clone)]
pub(crate) struct ServiceStore {
    backend: Arc<KvBackend>,
    service: Arc<str>,
    shared: Arc<BTreeSet<String>>,
    limits: StateLimits,
    observer: Arc<dyn StateObserver>,
}

impl ServiceStore {
    pub(super) fn new(
        backend: Arc<KvBackend>,
        service: &str,
        shared: BTreeSet<String>,
        limits: StateLimits,
        observer: Arc<dyn StateObserver>,
    ) -> Self {
        Self {
            backend,
            service: service.into(),
            shared: Arc::new(shared),
            limits,
            observer,
        }
    }

    /// Opens the bucket a guest names (`store.open`).
    pub(crate) fn open(&self, name: &str) -> Result<Bucket, KvError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        self.observer.kv_operation(KvOp::Open, !valid);
        if !valid {
            return Err(KvError::NoSuchBucket(name.chars().take(80).collect()));
        }
        let account = space_of(&self.service, &self.shared, name);
        let full = format!("{account}/{name}");
        Ok(Bucket {
            inner: Arc::new(OpenBucket {
                id: BucketId {
                    account: account.into(),
                    full: full.into(),
                },
                store: self.clone(),
            }),
        })
    }
}

/// An opened bucket: every operation checks the limits, then asks the
/// backend, then tells the observer. Cheap to clone (one `Arc`): each host
/// call takes its own handle to it.
#[derive(Debug, Clone)]
pub struct Bucket {
    inner: Arc<OpenBucket>,
}

#[derive(Debug)]
struct OpenBucket {
    id: BucketId,
    store: ServiceStore,
}

impl Bucket {
    fn check_key(&self, key: &str) -> Result<(), KvError> {
        let max = self.inner.store.limits.max_key_bytes;
        match key.len() > max {
            true => Err(KvError::KeyTooLong {
                len: key.len(),
                max,
            }),
            false => Ok(()),
        }
    }

    fn check_value(&self, value: &[u8]) -> Result<(), KvError> {
        let max = self.inner.store.limits.max_value_bytes;
        match value.len() > max {
            true => Err(KvError::ValueTooLarge {
                len: value.len(),
                max,
            }),
            false => Ok(()),
        }
    }

    fn counted<T>(&self, op: KvOp, result: Result<T, KvError>) -> Result<T, KvError> {
        self.inner.store.observer.kv_operation(op, result.is_err());
        if op != KvOp::Read
            && let Some(held) = self.held()
        {
            self.inner.store.observer.kv_bytes(held);
        }
        result
    }

    /// The bytes this bucket's account holds, for an embedded backend.
    fn held(&self) -> Option<u64> {
        match &*self.inner.store.backend {
            KvBackend::Memory(kv) => Some(kv.held(&self.inner.id.account)),
            KvBackend::File(kv) => Some(kv.held(&self.inner.id.account)),
            KvBackend::Redis(_) => None,
        }
    }

    fn max_total(&self) -> u64 {
        self.inner.store.limits.max_total_bytes
    }

    /// `get`.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let result = match self.check_key(key) {
            Ok(()) => on_backend!(&*self.inner.store.backend, get(&self.inner.id, key)),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Read, result)
    }

    /// `set`.
    pub(crate) async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let result = match self.check_key(key).and_then(|()| self.check_value(&value)) {
            Ok(()) => on_backend!(
                &*self.inner.store.backend,
                set_many(
                    &self.inner.id,
                    vec![(key.to_owned(), value)],
                    self.max_total()
                )
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Write, result)
    }

    /// `delete`.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), KvError> {
        let result = match self.check_key(key) {
            Ok(()) => on_backend!(
                &*self.inner.store.backend,
                delete_many(&self.inner.id, vec![key.to_owned()])
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Write, result)
    }

    /// `exists`.
    pub(crate) async fn exists(&self, key: &str) -> Result<bool, KvError> {
        let result = match self.check_key(key) {
            Ok(()) => on_backend!(&*self.inner.store.backend, exists(&self.inner.id, key)),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Read, result)
    }

    /// `list-keys`: a page of keys and the cursor of the next, if any.
    pub(crate) async fn list_keys(
        &self,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let result = on_backend!(
            &*self.inner.store.backend,
            list_keys(&self.inner.id, cursor.unwrap_or(0), KEYS_PER_PAGE)
        );
        self.counted(KvOp::Read, result)
    }

    /// `increment`: adds `delta` to the decimal counter at `key` (absent is
    /// 0) and returns the new value.
    pub(crate) async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let result = match self.check_key(key) {
            Ok(()) => on_backend!(
                &*self.inner.store.backend,
                increment(&self.inner.id, key, delta, self.max_total())
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Atomic, result)
    }

    /// The `swap` of a `cas`: sets `key` to `value` if it still holds
    /// `seen` (`None`: still absent).
    pub(crate) async fn swap(
        &self,
        key: &str,
        seen: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<Swapped, KvError> {
        let result = match self.check_key(key).and_then(|()| self.check_value(&value)) {
            Ok(()) => on_backend!(
                &*self.inner.store.backend,
                swap(&self.inner.id, key, seen, value, self.max_total())
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Atomic, result)
    }

    /// `get-many`: the keys present, with their values, in the order asked.
    pub(crate) async fn get_many(&self, keys: Vec<String>) -> Result<Found, KvError> {
        let result = match keys.iter().try_for_each(|key| self.check_key(key)) {
            Ok(()) => on_backend!(&*self.inner.store.backend, get_many(&self.inner.id, keys)),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Read, result)
    }

    /// `set-many`.
    pub(crate) async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), KvError> {
        let checked = pairs.iter().try_for_each(|(key, value)| {
            self.check_key(key).and_then(|()| self.check_value(value))
        });
        let result = match checked {
            Ok(()) => on_backend!(
                &*self.inner.store.backend,
                set_many(&self.inner.id, pairs, self.max_total())
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Write, result)
    }

    /// `delete-many`.
    pub(crate) async fn delete_many(&self, keys: Vec<String>) -> Result<(), KvError> {
        let result = match keys.iter().try_for_each(|key| self.check_key(key)) {
            Ok(()) => on_backend!(
                &*self.inner.store.backend,
                delete_many(&self.inner.id, keys)
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Write, result)
    }
}

/// `value + delta` for a counter stored as decimal text (absent is 0).
pub(super) fn incremented(value: Option<&[u8]>, delta: i64) -> Result<i64, KvError> {
    let current = match value {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or(KvError::NotAnInteger)?,
    };
    current.checked_add(delta).ok_or(KvError::Overflow)
}

/// What one entry costs the host beyond its bytes: its 64-byte slot in the
/// hash table and a node of the scan order in memory (a key over 24 bytes,
/// or a value over 16, has an allocation of its own besides), its row and
/// index in a file. Counted against `--kv-max-bytes`, so that millions of
/// empty keys cannot hold many times the cap.
pub(super) const ENTRY_OVERHEAD: u64 = 128;

/// What a bucket that holds entries costs the memory backend beyond them
/// (its map and name; about 750 bytes measured).
pub(super) const BUCKET_OVERHEAD: u64 = 1024;

/// The bytes an entry counts for against its account: its bucket's full
/// name, its key and its value — what a file backend stores in its row
/// (`BUCKET \0 KEY`, see `file.rs`) — and [`ENTRY_OVERHEAD`]. The same on
/// every embedded backend, and the same when a file is reopened.
pub(super) fn footprint(bucket: &str, key: &str, value: &[u8]) -> u64 {
    row_footprint(bucket.len() + 1 + key.len(), value)
}

/// [`footprint`] of a stored row of `row_len` bytes (bucket, `\0`, key).
pub(super) fn row_footprint(row_len: usize, value: &[u8]) -> u64 {
    (row_len + value.len()) as u64 + ENTRY_OVERHEAD
}
