//! What the shared layer reports upward (the service's metrics).

/// A key-value operation, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KvOp {
    /// `store.open`.
    Open,
    /// `get`, `exists`, `list-keys`, `get-many`, `cas.new`.
    Read,
    /// `set`, `delete`, `set-many`, `delete-many`.
    Write,
    /// `increment`, `swap`.
    Atomic,
}

impl KvOp {
    /// The label value in `/metrics`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Read => "read",
            Self::Write => "write",
            Self::Atomic => "atomic",
        }
    }
}

/// Told of every key-value operation and message, per service.
pub(crate) trait StateObserver: Send + Sync + std::fmt::Debug {
    /// A key-value operation ended; `failed` says whether it returned an
    /// error (a limit, a missing bucket, the backend down).
    fn kv_operation(&self, op: KvOp, failed: bool);
    /// The bytes the service's account holds in an embedded backend now.
    fn kv_bytes(&self, bytes: u64);
    /// A message was published.
    fn published(&self);
    /// A message was queued for one of the service's subscribers.
    fn delivered(&self);
    /// One of the service's subscribers lost its oldest queued message.
    fn lost(&self);
    /// A subscribe was refused: the request or the service held as many
    /// subscriptions as it may.
    fn subscription_refused(&self);
}

/// An observer that counts nothing: for a share made only to check a
/// handler (`wasmserve check`), and for tests.
#[derive(Debug)]
pub(crate) struct Unobserved;

impl StateObserver for Unobserved {
    fn kv_operation(&self, _: KvOp, _: bool) {}
    fn kv_bytes(&self, _: u64) {}
    fn published(&self) {}
    fn delivered(&self) {}
    fn lost(&self) {}
    fn subscription_refused(&self) {}
}
