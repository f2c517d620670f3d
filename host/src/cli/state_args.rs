//! The flags of a service's shared state (`--state` and its limits).

use std::collections::BTreeSet;

use clap::Args;

use crate::shared::{StateBackend, StateLimits, StateSpec};

/// Shared state: key-value buckets and pub/sub channels.
#[derive(Debug, Args, Clone)]
pub(crate) struct StateArgs {
    /// Where handlers' buckets and channels live: `memory` (in this
    /// process), `file:PATH` (buckets in a crash-safe redb file; channels
    /// in this process), or `redis://HOST:PORT[/DB]` (buckets in Redis,
    /// channels on Redis pub/sub: several hosts share them).
    #[arg(long, value_name = "BACKEND", default_value = "memory", value_parser = parse_backend, help_heading = "Shared state")]
    pub(crate) state: StateBackend,

    /// A bucket every service naming it shares (on the same backend);
    /// other buckets belong to their service alone. Repeatable.
    #[arg(long, value_name = "NAME", help_heading = "Shared state")]
    pub(crate) share_bucket: Vec<String>,

    /// A channel topic shared the same way. Repeatable.
    #[arg(long, value_name = "TOPIC", help_heading = "Shared state")]
    pub(crate) share_topic: Vec<String>,

    /// The longest key, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = StateLimits::default().max_key_bytes, help_heading = "Shared state")]
    pub(crate) kv_max_key: usize,

    /// The largest value, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = StateLimits::default().max_value_bytes, help_heading = "Shared state")]
    pub(crate) kv_max_value: usize,

    /// Bytes of keys and values the service may hold in the memory or file
    /// backend (Redis has its own maxmemory).
    #[arg(long, value_name = "BYTES", default_value_t = StateLimits::default().max_total_bytes, help_heading = "Shared state")]
    pub(crate) kv_max_bytes: u64,

    /// The largest message one publish may send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = StateLimits::default().max_message_bytes, help_heading = "Shared state")]
    pub(crate) channel_max_message: usize,

    /// Messages one subscriber may have queued (and at most 256 KiB);
    /// past that it loses the oldest and is told how many.
    #[arg(long, value_name = "N", default_value_t = StateLimits::default().queue_messages, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000), help_heading = "Shared state")]
    pub(crate) channel_queue: usize,

    /// Subscriptions one request may hold at once; past that, subscribe
    /// fails and says so.
    #[arg(long, value_name = "N", default_value_t = StateLimits::default().subscriptions_per_request, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096), help_heading = "Shared state")]
    pub(crate) channel_subscriptions_per_request: usize,

    /// Subscriptions all of the service's requests may hold together.
    #[arg(long, value_name = "N", default_value_t = StateLimits::default().subscriptions, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000), help_heading = "Shared state")]
    pub(crate) channel_subscriptions: usize,
}

fn parse_backend(text: &str) -> Result<StateBackend, String> {
    text.parse()
}

/// The flags' ids, for the message that sends them to `[service.state]`.
pub(super) const STATE_FLAGS: &[&str] = &[
    "state",
    "share_bucket",
    "share_topic",
    "kv_max_key",
    "kv_max_value",
    "kv_max_bytes",
    "channel_max_message",
    "channel_queue",
    "channel_subscriptions_per_request",
    "channel_subscriptions",
];

impl StateArgs {
    /// The state of the one service the flags describe.
    pub(crate) fn spec(&self) -> StateSpec {
        StateSpec {
            backend: self.state.clone(),
            shared_buckets: self.share_bucket.iter().cloned().collect::<BTreeSet<_>>(),
            shared_topics: self.share_topic.iter().cloned().collect::<BTreeSet<_>>(),
            limits: StateLimits {
                max_key_bytes: self.kv_max_key,
                max_value_bytes: self.kv_max_value,
                max_total_bytes: self.kv_max_bytes,
                max_message_bytes: self.channel_max_message,
                queue_messages: self.channel_queue,
                subscriptions_per_request: self.channel_subscriptions_per_request,
                subscriptions: self.channel_subscriptions,
                ..StateLimits::default()
            },
        }
    }
}
