//! How an operator describes a service's shared state: which backend, which
//! buckets and topics are shared with other services, and the limits.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::limits::StateLimits;

/// Where buckets and topics live (`--state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) enum StateBackend {
    /// In the process's memory: fast, gone at exit (`memory`, the default).
    #[default]
    Memory,
    /// Keys and values in a crash-safe `redb` file (`file:PATH`); topics in
    /// the process.
    File(PathBuf),
    /// Keys and values in Redis, topics on Redis pub/sub
    /// (`redis://HOST:PORT[/DB]`), so several hosts share them.
    Redis(String),
}

impl FromStr for StateBackend {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(path) = text.strip_prefix("file:") {
            if path.is_empty() {
                return Err("file: needs a path, e.g. file:/var/lib/wasmserve/state.redb".into());
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if text.starts_with("redis://") || text.starts_with("redis+unix://") {
            return redis::Client::open(text)
                .map(|_| Self::Redis(text.to_owned()))
                .map_err(|err| format!("{text:?} is not a Redis URL: {err}"));
        }
        Err(format!(
            "unknown state backend {text:?}: use memory, file:PATH or redis://HOST:PORT"
        ))
    }
}

impl fmt::Display for StateBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Redis(url) => f.write_str(url),
        }
    }
}

/// A service's shared state: its backend, the buckets and topics it shares
/// with other services on the same backend, and the limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StateSpec {
    /// Where buckets and topics live.
    pub(crate) backend: StateBackend,
    /// Buckets every service naming them opens alike; any other bucket
    /// belongs to the service alone.
    pub(crate) shared_buckets: BTreeSet<String>,
    /// Topics shared the same way.
    pub(crate) shared_topics: BTreeSet<String>,
    /// Sizes and counts.
    pub(crate) limits: StateLimits,
}

/// Where a bucket or topic named by a guest lives: the service's own space,
/// or the shared one. Also the account whose bytes count against the limit.
pub(super) fn space_of(service: &str, shared: &BTreeSet<String>, name: &str) -> String {
    if shared.contains(name) {
        "shared".to_owned()
    } else {
        format!("service/{service}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_parse_and_print_back() {
        for text in ["memory", "file:/tmp/state.redb", "redis://127.0.0.1:6379"] {
            let backend: StateBackend = text.parse().unwrap_or_default();
            assert_eq!(backend.to_string(), text);
        }
    }

    #[test]
    fn a_bad_backend_names_the_choices() {
        let err = "postgres://x"
            .parse::<StateBackend>()
            .err()
            .unwrap_or_default();
        assert!(err.contains("memory, file:PATH or redis://"), "{err}");
        let err = "file:".parse::<StateBackend>().err().unwrap_or_default();
        assert!(err.contains("needs a path"), "{err}");
    }
}
