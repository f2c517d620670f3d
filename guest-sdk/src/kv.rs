//! Shared state: buckets of keys and values, kept by the host for every
//! instance of the service (and, with `--state redis://…`, every host) —
//! the standard `wasi:keyvalue` draft 2, the one Spin implements.
//!
//! A visitor counter, the classic:
//!
//! ```no_run
//! use wasmserve_sdk::{Request, kv};
//!
//! fn handle(request: Request) -> Result<(), wasmserve_sdk::Error> {
//!     let visits = kv::open("default")?.increment("visits", 1)?;
//!     request.sendall(format!("you are visitor #{visits}\n").as_bytes())
//! }
//!
//! wasmserve_sdk::export_handler!(handle);
//! # fn main() {}
//! ```
//!
//! Buckets belong to the service unless the operator shares them
//! (`--share-bucket NAME`); keys are strings, values bytes; counters are
//! stored as their decimal text (`get` of a counter reads `b"42"`). The
//! host bounds key and value sizes and, in its embedded backends, the
//! bytes a service holds; over a limit, a call returns an error naming it.

use crate::bindings::wasi::keyvalue::{atomics, batch, store};
pub use crate::keyspace::{
    Expiry, ExpiryCondition, RenameOutcome, ScanPage, WriteCondition, WriteExpiry, WriteOutcome,
    now_millis,
};

/// Why a key-value call failed.
///
/// ```no_run
/// # fn f() -> Result<(), wasmserve_sdk::kv::Error> {
/// match wasmserve_sdk::kv::open("no such bucket!") {
///     Err(wasmserve_sdk::kv::Error::NoSuchBucket) => {}
///     other => { other?; }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The host does not know (or refuses) that bucket name: names are 1
    /// to 64 letters, digits, `-`, `_` or `.`.
    NoSuchBucket,
    /// The host denied access.
    AccessDenied,
    /// Anything else: a limit (the text names the flag), a value that is
    /// not a counter, the backend unreachable.
    Other(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSuchBucket => f.write_str("no such bucket"),
            Self::AccessDenied => f.write_str("access denied"),
            Self::Other(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

impl From<store::Error> for Error {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::NoSuchStore => Self::NoSuchBucket,
            store::Error::AccessDenied => Self::AccessDenied,
            store::Error::Other(why) => Self::Other(why),
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        std::io::Error::other(err)
    }
}

/// Opens the bucket `name` (`"default"` is as good a name as any).
///
/// ```no_run
/// let bucket = wasmserve_sdk::kv::open("default")?;
/// # Ok::<(), wasmserve_sdk::kv::Error>(())
/// ```
pub fn open(name: &str) -> Result<Bucket, Error> {
    Ok(Bucket(store::open(name)?))
}

/// An open bucket.
///
/// ```no_run
/// let bucket = wasmserve_sdk::kv::open("default")?;
/// bucket.set("greeting", b"hello")?;
/// assert_eq!(bucket.get("greeting")?.as_deref(), Some(&b"hello"[..]));
/// # Ok::<(), wasmserve_sdk::kv::Error>(())
/// ```
#[derive(Debug)]
pub struct Bucket(pub(crate) store::Bucket);

impl Bucket {
    /// The value at `key`, or `None`.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let name = bucket.get("name")?.unwrap_or_default();
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.0.get(key)?)
    }

    /// Sets `key` to `value`.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// bucket.set("name", b"alice")?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        Ok(self.0.set(key, value)?)
    }

    /// Deletes `key` (absent is fine).
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// bucket.delete("name")?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        Ok(self.0.delete(key)?)
    }

    /// Whether `key` is set.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// if bucket.exists("banned:10.0.0.1")? { /* refuse */ }
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.0.exists(key)?)
    }

    /// Every key of the bucket (all pages).
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("members")?;
    /// let who = bucket.keys()?.join(", ");
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.0.list_keys(cursor.as_deref())?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Adds `delta` to the counter at `key` (absent counts as 0) atomically,
    /// and returns the new value.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let n = bucket.increment("visits", 1)?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        Ok(atomics::increment(&self.0, key, delta)?)
    }

    /// Replaces the value at `key` with `change(current)` atomically
    /// (compare-and-swap, retried while another writer got in first), and
    /// returns the value written.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// // Append to a log kept in one value.
    /// bucket.update("log", |old| [old.unwrap_or_default(), b"event\n".to_vec()].concat())?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn update(
        &self,
        key: &str,
        mut change: impl FnMut(Option<Vec<u8>>) -> Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let mut ticket = atomics::Cas::new(&self.0, key)?;
        loop {
            let value = change(ticket.current()?);
            match atomics::swap(ticket, &value) {
                Ok(()) => return Ok(value),
                Err(atomics::CasError::CasFailed(fresh)) => ticket = fresh,
                Err(atomics::CasError::StoreError(err)) => return Err(err.into()),
            }
        }
    }

    /// The values of several keys in one call, in the order asked (`None`
    /// for a key that is not set).
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let values = bucket.get_many(&["a", "b"])?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let owned: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
        let found = batch::get_many(&self.0, &owned)?;
        Ok(found
            .into_iter()
            .map(|pair| pair.map(|(_, value)| value))
            .collect())
    }

    /// Sets several keys in one call.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// bucket.set_many(&[("a", b"1"), ("b", b"2")])?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn set_many(&self, pairs: &[(&str, &[u8])]) -> Result<(), Error> {
        Ok(batch::set_many(
            &self.0,
            &crate::keyspace::owned_pairs(pairs),
        )?)
    }

    /// Deletes several keys in one call.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// bucket.delete_many(&["a", "b"])?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn delete_many(&self, keys: &[&str]) -> Result<(), Error> {
        let owned: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
        Ok(batch::delete_many(&self.0, &owned)?)
    }
}
