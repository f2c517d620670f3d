//! What a real protocol server needs from a bucket beyond `wasi:keyvalue`
//! (contract 0.2.3's `keyspace`, 0.2.4's `increment-many`): keys that
//! expire, writes on a condition, a bucket's size, clearing it, scanning
//! it, and steps over several keys at once. These are methods of [`kv::Bucket`](crate::kv::Bucket);
//! deadlines are Unix milliseconds ([`kv::now_millis`](crate::kv::now_millis)
//! gives the clock they count from).
//!
//! A session that lasts half an hour, and a lock only one instance wins:
//!
//! ```no_run
//! use std::time::Duration;
//! use wasmserve_sdk::kv::{self, WriteCondition, WriteExpiry};
//!
//! let sessions = kv::open("sessions")?;
//! sessions.set_expiring("token-1", b"alice", Duration::from_secs(1800))?;
//! let deadline = kv::now_millis() + 5_000;
//! let won = sessions
//!     .write("lock", b"me", WriteCondition::IfAbsent, WriteExpiry::At(deadline), false)?
//!     .written;
//! # Ok::<(), kv::Error>(())
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bindings::wasmserve::handler::keyspace;
pub use crate::bindings::wasmserve::handler::keyspace::{
    Expiry, ExpiryCondition, RenameOutcome, ScanPage, WriteCondition, WriteExpiry, WriteOutcome,
};
use crate::kv::{Bucket, Error};

/// The wall clock in Unix milliseconds: what deadlines count from.
///
/// ```no_run
/// let in_a_minute = wasmserve_sdk::kv::now_millis() + 60_000;
/// ```
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

pub(crate) fn owned_pairs(pairs: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.to_vec()))
        .collect()
}

impl Bucket {
    /// Sets `key` to `value`, to expire after `ttl`.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// bucket.set_expiring("otp", b"123456", std::time::Duration::from_secs(60))?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn set_expiring(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), Error> {
        let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let deadline = now_millis().saturating_add(ttl);
        self.write(
            key,
            value,
            WriteCondition::Always,
            WriteExpiry::At(deadline),
            false,
        )
        .map(drop)
    }

    /// The deadline of `key` (`Expiry::Absent` if there is no such key).
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// use wasmserve_sdk::kv::Expiry;
    /// if let Expiry::At(at) = bucket.expiry("otp")? {
    ///     let left_ms = at.saturating_sub(wasmserve_sdk::kv::now_millis());
    /// }
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn expiry(&self, key: &str) -> Result<Expiry, Error> {
        Ok(keyspace::get_expiry(&self.0, key)?)
    }

    /// Sets (`Some`) or removes (`None`) the deadline of `key` if it exists
    /// and `condition` holds; true if it changed. A deadline already past
    /// deletes the key.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// use wasmserve_sdk::kv::ExpiryCondition;
    /// // PERSIST: remove a deadline, if there is one.
    /// let removed = bucket.set_expiry("otp", None, ExpiryCondition::IF_SOME)?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn set_expiry(
        &self,
        key: &str,
        deadline: Option<u64>,
        condition: ExpiryCondition,
    ) -> Result<bool, Error> {
        Ok(keyspace::set_expiry(&self.0, key, deadline, condition)?)
    }

    /// Writes `value` at `key` if `condition` holds, with the deadline
    /// `expiry` says, in one step; whether it wrote and, if
    /// `want_previous`, the value before (Redis's `SET` with its options).
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// use wasmserve_sdk::kv::{WriteCondition, WriteExpiry};
    /// // SET k v XX KEEPTTL GET
    /// let outcome = bucket.write("k", b"v", WriteCondition::IfPresent, WriteExpiry::Keep, true)?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn write(
        &self,
        key: &str,
        value: &[u8],
        condition: WriteCondition,
        expiry: WriteExpiry,
        want_previous: bool,
    ) -> Result<WriteOutcome, Error> {
        Ok(keyspace::write(
            &self.0,
            key,
            value,
            &condition,
            expiry,
            want_previous,
        )?)
    }

    /// Reads `key` and sets (`Some`) or removes (`None`) its deadline in the
    /// same step (Redis's `GETEX`).
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let value = bucket.get_and_expire("session", Some(wasmserve_sdk::kv::now_millis() + 60_000))?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn get_and_expire(
        &self,
        key: &str,
        deadline: Option<u64>,
    ) -> Result<Option<Vec<u8>>, Error> {
        Ok(keyspace::get_and_expire(&self.0, key, deadline)?)
    }

    /// Reads and deletes `key` in one step (Redis's `GETDEL`).
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let once = bucket.take("one-time-token")?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn take(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(keyspace::take(&self.0, key)?)
    }

    /// How many keys the bucket holds.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let size = bucket.count()?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn count(&self) -> Result<u64, Error> {
        Ok(keyspace::count(&self.0)?)
    }

    /// Deletes every key of the bucket.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// bucket.clear()?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn clear(&self) -> Result<(), Error> {
        Ok(keyspace::clear(&self.0)?)
    }

    /// One page of keys from `cursor` (0 to begin; the page's `cursor` is 0
    /// at the end), those matching the glob `pattern` if given, looking at
    /// about `count` keys. Every key present for the whole scan comes back
    /// at least once.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let mut cursor = 0;
    /// loop {
    ///     let page = bucket.scan(cursor, Some("user:*"), 100)?;
    ///     for key in page.keys { /* … */ }
    ///     if page.cursor == 0 { break; }
    ///     cursor = page.cursor;
    /// }
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn scan(&self, cursor: u64, pattern: Option<&str>, count: u32) -> Result<ScanPage, Error> {
        Ok(keyspace::scan(&self.0, cursor, pattern, count)?)
    }

    /// A key picked at random, `None` if the bucket is empty.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let any = bucket.random_key()?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn random_key(&self) -> Result<Option<String>, Error> {
        Ok(keyspace::random_key(&self.0)?)
    }

    /// Moves `from`'s value and deadline to `to`, replacing it unless
    /// `replace` is false.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// use wasmserve_sdk::kv::RenameOutcome;
    /// if bucket.rename("draft", "final", false)? == RenameOutcome::TargetExists { /* … */ }
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn rename(&self, from: &str, to: &str, replace: bool) -> Result<RenameOutcome, Error> {
        Ok(keyspace::rename(&self.0, from, to, replace)?)
    }

    /// Copies `from`'s value and deadline to `to`, replacing it only if
    /// `replace`; true if it copied.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let copied = bucket.copy("template", "page-1", false)?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn copy(&self, from: &str, to: &str, replace: bool) -> Result<bool, Error> {
        Ok(keyspace::copy(&self.0, from, to, replace)?)
    }

    /// Sets every pair, only if none of the keys exists; true if it did.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("default")?;
    /// let claimed = bucket.set_many_if_none_exist(&[("a", b"1"), ("b", b"2")])?;
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn set_many_if_none_exist(&self, pairs: &[(&str, &[u8])]) -> Result<bool, Error> {
        Ok(keyspace::set_many_if_none_exist(
            &self.0,
            &owned_pairs(pairs),
        )?)
    }

    /// Adds each delta to the counter at its key (absent counts as 0), in
    /// order and in one step, in one host call; each key's new value, or
    /// that key's own error (its value is not a number, the sum overflows,
    /// the store is full), which leaves it unchanged and the others
    /// applied. The outer error means nothing was applied.
    ///
    /// ```no_run
    /// # let bucket = wasmserve_sdk::kv::open("stats")?;
    /// let counts = bucket.increment_many(&[("hits", 1), ("bytes", 512)])?;
    /// if let Ok(hits) = &counts[0] {
    ///     println!("{hits} hits");
    /// }
    /// # Ok::<(), wasmserve_sdk::kv::Error>(())
    /// ```
    pub fn increment_many(&self, deltas: &[(&str, i64)]) -> Result<Vec<Result<i64, Error>>, Error> {
        let owned: Vec<(String, i64)> = deltas
            .iter()
            .map(|(key, delta)| ((*key).to_owned(), *delta))
            .collect();
        Ok(keyspace::increment_many(&self.0, &owned)?
            .into_iter()
            .map(|outcome| outcome.map_err(Error::from))
            .collect())
    }
}
