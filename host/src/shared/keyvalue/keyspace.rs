//! The operations contract 0.2.3's `keyspace` interface (and 0.2.4's
//! `increment-many`) adds to a bucket:
//! expiry, conditional writes, count, clear, scan, random key, and steps
//! over two or more keys (rename, copy, set-if-none-exist). Their types,
//! and [`Bucket`]'s methods for them: check the limits, ask the backend,
//! tell the observer.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Bucket, KvBackend, KvError};
use crate::shared::observer::KvOp;

/// A key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No such key.
    Absent,
    /// Present, never expires.
    Persistent,
    /// Expires at this Unix time in milliseconds.
    At(u64),
}

/// When a deadline may change (Redis's `EXPIRE` options; all must hold).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExpiryCondition {
    /// Only if the key has no deadline (`NX`).
    pub(crate) if_none: bool,
    /// Only if it has one (`XX`).
    pub(crate) if_some: bool,
    /// Only if the new one is later; none counts as never (`GT`).
    pub(crate) if_later: bool,
    /// Only if the new one is earlier; none counts as never (`LT`).
    pub(crate) if_earlier: bool,
}

impl ExpiryCondition {
    /// Whether a key with deadline `current` may take `new` (`None`: never).
    pub(crate) fn allows(&self, current: Option<u64>, new: Option<u64>) -> bool {
        let never = u64::MAX;
        let (current_at, new_at) = (current.unwrap_or(never), new.unwrap_or(never));
        !(self.if_none && current.is_some()
            || self.if_some && current.is_none()
            || self.if_later && new_at <= current_at
            || self.if_earlier && new_at >= current_at)
    }
}

/// When a write happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteCondition {
    /// Always.
    Always,
    /// Only if absent.
    IfAbsent,
    /// Only if present.
    IfPresent,
    /// Only if it holds exactly these bytes.
    IfEqual(Vec<u8>),
}

impl WriteCondition {
    /// Whether a key holding `current` may be written.
    pub(crate) fn allows(&self, current: Option<&[u8]>) -> bool {
        match self {
            Self::Always => true,
            Self::IfAbsent => current.is_none(),
            Self::IfPresent => current.is_some(),
            Self::IfEqual(expected) => current == Some(expected.as_slice()),
        }
    }
}

/// The deadline a write leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteExpiry {
    /// None.
    Clear,
    /// The one the key had.
    Keep,
    /// This Unix time in milliseconds.
    At(u64),
}

impl WriteExpiry {
    /// The deadline a key that had `current` gets.
    pub(crate) fn resolve(self, current: Option<u64>) -> Option<u64> {
        match self {
            Self::Clear => None,
            Self::Keep => current,
            Self::At(at) => Some(at),
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteOutcome {
    /// Whether it wrote.
    pub(crate) written: bool,
    /// The value before, when asked for.
    pub(crate) previous: Option<Vec<u8>>,
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanPage {
    /// The matching keys of the page.
    pub(crate) keys: Vec<String>,
    /// The next cursor; 0 at the end.
    pub(crate) cursor: u64,
}

/// What a rename did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenameOutcome {
    /// Moved.
    Renamed,
    /// No source key.
    NoSuchKey,
    /// The target exists and replacing was not allowed.
    TargetExists,
}

/// Keys a scan looks at per page at most, whatever the guest's hint.
pub(crate) const MAX_SCAN_COUNT: u32 = 10_000;

/// The host's wall clock in Unix milliseconds: what deadlines count from.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

impl Bucket {
    fn backend(&self) -> &KvBackend {
        &self.inner.store.backend
    }

    /// `get-expiry`.
    pub(crate) async fn expiry(&self, key: &str) -> Result<Expiry, KvError> {
        let result = match self.check_key(key) {
            Ok(()) => on_backend!(self.backend(), expiry(&self.inner.id, key)),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Read, result)
    }

    /// `set-expiry`.
    pub(crate) async fn set_expiry(
        &self,
        key: &str,
        deadline: Option<u64>,
        condition: ExpiryCondition,
    ) -> Result<bool, KvError> {
        let result = match self.check_key(key) {
            Ok(()) => on_backend!(
                self.backend(),
                set_expiry(&self.inner.id, key, deadline, condition)
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Write, result)
    }

    /// `write`.
    pub(crate) async fn write(
        &self,
        key: &str,
        value: Vec<u8>,
        condition: WriteCondition,
        expiry: WriteExpiry,
        want_previous: bool,
    ) -> Result<WriteOutcome, KvError> {
        let result = match self.check_key(key).and_then(|()| self.check_value(&value)) {
            Ok(()) => on_backend!(
                self.backend(),
                write(
                    &self.inner.id,
                    key,
                    value,
                    condition,
                    expiry,
                    want_previous,
                    self.max_total()
                )
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Atomic, result)
    }

    /// `get-and-expire`.
    pub(crate) async fn get_and_expire(
        &self,
        key: &str,
        deadline: Option<u64>,
    ) -> Result<Option<Vec<u8>>, KvError> {
        let result = match self.check_key(key) {
            Ok(()) => on_backend!(
                self.backend(),
                get_and_expire(&self.inner.id, key, deadline)
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Atomic, result)
    }

    /// `take`.
    pub(crate) async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let result = match self.check_key(key) {
            Ok(()) => on_backend!(self.backend(), take(&self.inner.id, key)),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Atomic, result)
    }

    /// `count`.
    pub(crate) async fn count(&self) -> Result<u64, KvError> {
        let result = on_backend!(self.backend(), count(&self.inner.id));
        self.counted(KvOp::Read, result)
    }

    /// `clear`.
    pub(crate) async fn clear(&self) -> Result<(), KvError> {
        let result = on_backend!(self.backend(), clear(&self.inner.id));
        self.counted(KvOp::Write, result)
    }

    /// `scan`.
    pub(crate) async fn scan(
        &self,
        cursor: u64,
        pattern: Option<String>,
        count: u32,
    ) -> Result<ScanPage, KvError> {
        let count = count.clamp(1, MAX_SCAN_COUNT);
        let result = on_backend!(self.backend(), scan(&self.inner.id, cursor, pattern, count));
        self.counted(KvOp::Read, result)
    }

    /// `random-key`.
    pub(crate) async fn random_key(&self) -> Result<Option<String>, KvError> {
        let result = on_backend!(self.backend(), random_key(&self.inner.id));
        self.counted(KvOp::Read, result)
    }

    /// `rename`.
    pub(crate) async fn rename(
        &self,
        from: &str,
        to: &str,
        replace: bool,
    ) -> Result<RenameOutcome, KvError> {
        let result = match self.check_key(from).and_then(|()| self.check_key(to)) {
            Ok(()) => on_backend!(
                self.backend(),
                rename(&self.inner.id, from, to, replace, self.max_total())
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Atomic, result)
    }

    /// `copy`.
    pub(crate) async fn copy(&self, from: &str, to: &str, replace: bool) -> Result<bool, KvError> {
        let result = match self.check_key(from).and_then(|()| self.check_key(to)) {
            Ok(()) => on_backend!(
                self.backend(),
                copy(&self.inner.id, from, to, replace, self.max_total())
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Atomic, result)
    }

    /// `set-many-if-none-exist`.
    pub(crate) async fn set_many_if_none_exist(
        &self,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> Result<bool, KvError> {
        let checked = pairs.iter().try_for_each(|(key, value)| {
            self.check_key(key).and_then(|()| self.check_value(value))
        });
        let result = match checked {
            Ok(()) => on_backend!(
                self.backend(),
                set_many_if_none_exist(&self.inner.id, pairs, self.max_total())
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Atomic, result)
    }

    /// `increment-many` (contract 0.2.4): every delta added in order, in
    /// one step; each key's new value, or its own failure.
    pub(crate) async fn increment_many(
        &self,
        deltas: Vec<(String, i64)>,
    ) -> Result<Vec<Result<i64, KvError>>, KvError> {
        let result = match deltas.iter().try_for_each(|(key, _)| self.check_key(key)) {
            Ok(()) => on_backend!(
                self.backend(),
                increment_many(&self.inner.id, deltas, self.max_total())
            ),
            Err(err) => Err(err),
        };
        self.counted(KvOp::Atomic, result)
    }
}

#[cfg(test)]
mod tests {
    use super::ExpiryCondition;

    #[test]
    fn expiry_conditions_follow_redis() {
        let gt = ExpiryCondition {
            if_later: true,
            ..Default::default()
        };
        assert!(!gt.allows(None, Some(5)), "GT on a key without ttl");
        assert!(gt.allows(Some(5), Some(6)));
        assert!(!gt.allows(Some(5), Some(5)));
        let lt = ExpiryCondition {
            if_earlier: true,
            ..Default::default()
        };
        assert!(lt.allows(None, Some(5)), "LT on a key without ttl");
        assert!(!lt.allows(Some(5), Some(6)));
        let nx = ExpiryCondition {
            if_none: true,
            ..Default::default()
        };
        assert!(nx.allows(None, Some(1)));
        assert!(!nx.allows(Some(1), Some(2)));
    }
}
