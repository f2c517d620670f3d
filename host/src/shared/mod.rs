//! The shared layer: what outlives one request and is shared between
//! instances — key-value buckets (`wasi:keyvalue`) and pub/sub channels —
//! over an embedded backend (memory, or a crash-safe `redb` file) or Redis.
//!
//! It knows nothing of wasm: the wasm layer links the guest's imports to
//! a service's [`ServiceShare`], and the service layer makes one per
//! service from its [`StateSpec`] through the process's [`Backends`] (one
//! memory store, one open file and one Redis client per backend, however
//! many services use them, so buckets and topics named shared really are).
//! What happens is reported through a [`StateObserver`] (the metrics).

mod backends;
mod channels;
pub(crate) mod keyvalue;
mod limits;
mod observer;
mod spec;

pub(crate) use backends::{Backends, shown_backend};
pub(crate) use channels::{
    ChannelError, PublisherId, ServiceChannels, Subscription, next_publisher_id,
};
pub(crate) use keyvalue::{Bucket, KvError, ServiceStore};
pub(crate) use limits::StateLimits;
pub(crate) use observer::{KvOp, StateObserver};
pub(crate) use spec::{StateBackend, StateSpec};

/// What one service's instances share: its buckets and its topics.
#[derive(Debug, Clone)]
pub(crate) struct ServiceShare {
    /// `wasi:keyvalue` buckets.
    pub(crate) store: ServiceStore,
    /// Pub/sub topics.
    pub(crate) channels: ServiceChannels,
}

impl ServiceShare {
    /// A share of its own, in memory, reporting to no one: for loading a
    /// handler only to check it (`wasmserve check`).
    pub(crate) fn detached(service: &str) -> Self {
        let backends = Backends::default();
        let unobserved: std::sync::Arc<dyn StateObserver> =
            std::sync::Arc::new(observer::Unobserved);
        // The memory backend cannot fail to open.
        match backends.share_for(service, &StateSpec::default(), unobserved) {
            Ok(share) => share,
            Err(_) => unreachable!("the memory backend always opens"),
        }
    }
}
