//! The backends this process has open: one memory store, one database per
//! file, one Redis client per URL, each with its channel hub, shared by
//! every service that names it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::ServiceShare;
use super::channels::{Hub, ServiceChannels};
use super::keyvalue::{FileKv, KvBackend, MemoryKv, RedisKv, ServiceStore};
use super::observer::StateObserver;
use super::spec::{StateBackend, StateSpec};

type Opened = (Arc<KvBackend>, Arc<Hub>);

/// Every backend opened so far, kept for the life of the process (a
/// reloaded service finds its buckets where it left them).
#[derive(Debug, Default)]
pub(crate) struct Backends {
    memory: Mutex<Option<Opened>>,
    files: Mutex<HashMap<PathBuf, Opened>>,
    redis: Mutex<HashMap<String, Opened>>,
}

/// `url` without a password, for messages and logs.
pub(super) fn shown_url(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_owned(),
    }
}

/// `backend` for logs: a Redis URL without its password.
pub(crate) fn shown_backend(backend: &StateBackend) -> String {
    match backend {
        StateBackend::Redis(url) => shown_url(url),
        other => other.to_string(),
    }
}

impl Backends {
    /// What `service`'s instances share, on the backend `spec` names,
    /// opening it at first use. Opening a file blocks on disk: call this
    /// off the runtime's workers. Errors are one line naming the backend.
    pub(crate) fn share_for(
        &self,
        service: &str,
        spec: &StateSpec,
        observer: Arc<dyn StateObserver>,
    ) -> Result<ServiceShare, String> {
        let (kv, hub) = self.open(&spec.backend)?;
        Ok(ServiceShare {
            store: ServiceStore::new(
                kv,
                service,
                spec.shared_buckets.clone(),
                spec.limits,
                Arc::clone(&observer),
            ),
            channels: ServiceChannels::new(
                hub,
                service,
                spec.shared_topics.clone(),
                spec.limits,
                observer,
            ),
        })
    }

    fn open(&self, backend: &StateBackend) -> Result<Opened, String> {
        fn opened(slot: &Opened) -> Opened {
            (Arc::clone(&slot.0), Arc::clone(&slot.1))
        }
        match backend {
            StateBackend::Memory => {
                let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
                let slot = memory.get_or_insert_with(|| {
                    (
                        Arc::new(KvBackend::Memory(MemoryKv::default())),
                        Hub::local(),
                    )
                });
                Ok(opened(slot))
            }
            StateBackend::File(path) => {
                let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(slot) = files.get(path) {
                    return Ok(opened(slot));
                }
                let kv = FileKv::open(path)
                    .map_err(|err| format!("cannot open the state file {err}"))?;
                let slot = (Arc::new(KvBackend::File(kv)), Hub::local());
                files.insert(path.clone(), opened(&slot));
                Ok(slot)
            }
            StateBackend::Redis(url) => {
                let mut clients = self.redis.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(slot) = clients.get(url) {
                    return Ok(opened(slot));
                }
                let shown = shown_url(url);
                let client = redis::Client::open(url.as_str())
                    .map_err(|err| format!("{shown} is not a usable Redis URL: {err}"))?;
                let kv = RedisKv::new(client.clone(), shown.clone())?;
                let hub = Hub::over_redis(client, shown)?;
                let slot = (Arc::new(KvBackend::Redis(kv)), hub);
                clients.insert(url.clone(), opened(&slot));
                Ok(slot)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shown_url;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            shown_url("redis://:secret@10.0.0.1:6379/0"),
            "redis://10.0.0.1:6379/0"
        );
        assert_eq!(
            shown_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
