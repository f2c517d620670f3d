//! The limits on what handlers keep and send through the shared layer.

/// Sizes and counts the shared layer enforces for one service. The
/// defaults are safe with 1,024 connections on a small machine: at most
/// 64 MiB of keys and values per service in the embedded backends, and at
/// most 256 KiB queued per subscriber and 64 MiB per service, 64
/// subscriptions per request and 16,384 per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateLimits {
    /// The longest key, in bytes.
    pub(crate) max_key_bytes: usize,
    /// The largest value, in bytes.
    pub(crate) max_value_bytes: usize,
    /// Keys and values one service (or one shared bucket) may hold in an
    /// embedded backend, in bytes. Redis enforces its own `maxmemory`.
    pub(crate) max_total_bytes: u64,
    /// The largest message one `publish` may send, in bytes.
    pub(crate) max_message_bytes: usize,
    /// Messages one subscriber may have queued before the oldest is lost.
    pub(crate) queue_messages: usize,
    /// Payload bytes one subscriber may have queued before the oldest
    /// message is lost.
    pub(crate) queue_bytes: usize,
    /// Payload bytes all of a service's subscribers together may have
    /// queued (a message held by many counts for each): the hard bound,
    /// however many subscriptions the guests make.
    pub(crate) queue_total_bytes: usize,
    /// Subscriptions one request may hold at once.
    pub(crate) subscriptions_per_request: usize,
    /// Subscriptions all of a service's requests may hold together (each
    /// costs the host a few hundred bytes even when idle).
    pub(crate) subscriptions: usize,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
            max_message_bytes: 64 * 1024,
            queue_messages: 1024,
            queue_bytes: 256 * 1024,
            queue_total_bytes: 64 * 1024 * 1024,
            subscriptions_per_request: 64,
            subscriptions: 16 * 1024,
        }
    }
}
