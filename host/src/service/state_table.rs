//! A service's `[service.state]` table in the config file: the backend,
//! what is shared, the limits — the names of the `--state` flags.

use std::path::Path;

use serde::Deserialize;

use crate::shared::{StateBackend, StateSpec};

/// `[service.state]`: the backend, what is shared, the limits (the names
/// of the flags, with `backend` for `--state`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateTable {
    backend: Option<String>,
    #[serde(default)]
    shared_buckets: Vec<String>,
    #[serde(default)]
    shared_topics: Vec<String>,
    kv_max_key: Option<usize>,
    kv_max_value: Option<usize>,
    kv_max_bytes: Option<u64>,
    channel_max_message: Option<usize>,
    channel_queue: Option<usize>,
    channel_subscriptions_per_request: Option<usize>,
    channel_subscriptions: Option<usize>,
}

impl StateTable {
    /// The spec, or the key at fault and why; a relative state file is
    /// found from the config file's folder, as handlers are.
    pub(super) fn spec(&self, base: &Path) -> Result<StateSpec, (&'static str, String)> {
        let mut spec = StateSpec::default();
        if let Some(backend) = &self.backend {
            spec.backend = match backend.parse() {
                Ok(StateBackend::File(path)) => StateBackend::File(base.join(path)),
                Ok(backend) => backend,
                Err(message) => return Err(("state.backend", message)),
            };
        }
        spec.shared_buckets = self.shared_buckets.iter().cloned().collect();
        spec.shared_topics = self.shared_topics.iter().cloned().collect();
        let limits = &mut spec.limits;
        limits.max_key_bytes = self.kv_max_key.unwrap_or(limits.max_key_bytes);
        limits.max_value_bytes = self.kv_max_value.unwrap_or(limits.max_value_bytes);
        limits.max_total_bytes = self.kv_max_bytes.unwrap_or(limits.max_total_bytes);
        limits.max_message_bytes = self.channel_max_message.unwrap_or(limits.max_message_bytes);
        match self.channel_queue {
            Some(0) => return Err(("state.channel_queue", "must be at least 1".into())),
            Some(queue) => limits.queue_messages = queue,
            None => {}
        }
        for (key, value, limit) in [
            (
                "state.channel_subscriptions_per_request",
                self.channel_subscriptions_per_request,
                &mut limits.subscriptions_per_request,
            ),
            (
                "state.channel_subscriptions",
                self.channel_subscriptions,
                &mut limits.subscriptions,
            ),
        ] {
            match value {
                Some(0) => return Err((key, "must be at least 1".into())),
                Some(value) => *limit = value,
                None => {}
            }
        }
        Ok(spec)
    }
}
