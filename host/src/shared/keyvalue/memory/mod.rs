//! The `memory` backend: buckets in the process's memory, gone at exit.
//! Every operation ([`ops`]) holds one lock for a map lookup and a copy. A
//! thread of its own deletes expired keys ten times a second (Redis's
//! active expiry), so their bytes leave the account without being read.
//! The file backend keeps the same [`Buckets`] and writes their changes to
//! its file.

mod buckets;
mod ops;
mod table;

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

pub(crate) use self::buckets::Buckets;
use super::keyspace::now_millis;

/// How often expired keys are reclaimed.
const RECLAIM_EVERY: Duration = Duration::from_millis(100);
/// Keys reclaimed per hold of the lock (the reclaimer lets others in
/// between batches).
pub(crate) const RECLAIM_BATCH: usize = 4096;

/// Every bucket of every service using `memory`.
#[derive(Debug)]
pub(crate) struct MemoryKv {
    inner: Arc<Mutex<Buckets>>,
}

impl Default for MemoryKv {
    fn default() -> Self {
        let inner = Arc::new(Mutex::new(Buckets::default()));
        spawn_reclaimer(Arc::downgrade(&inner), |store| {
            let now = now_millis();
            while lock(store).reclaim(now, RECLAIM_BATCH) == RECLAIM_BATCH {}
        });
        Self { inner }
    }
}

/// Runs `reclaim` on `store` every [`RECLAIM_EVERY`] on a thread of its
/// own, until the store is dropped. Without the thread (it could not be
/// started), expired keys still vanish when touched or counted; they only
/// hold their bytes longer.
pub(crate) fn spawn_reclaimer<T: Send + Sync + 'static>(store: Weak<T>, reclaim: fn(&T)) {
    let _ = std::thread::Builder::new()
        .name("kv-expiry".into())
        .spawn(move || {
            loop {
                std::thread::sleep(RECLAIM_EVERY);
                let Some(store) = store.upgrade() else {
                    return;
                };
                reclaim(&store);
            }
        });
}

/// Locks `store`; a panic while it was held leaves whole maps behind: go on.
pub(crate) fn lock(store: &Mutex<Buckets>) -> MutexGuard<'_, Buckets> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl MemoryKv {
    /// The buckets, for one operation.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Buckets> {
        lock(&self.inner)
    }

    pub(super) fn held(&self, account: &str) -> u64 {
        self.lock().held(account)
    }
}
