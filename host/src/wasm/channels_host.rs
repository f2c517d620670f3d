//! `wasmserve:handler/channels` for guests: publish, subscribe, and a
//! subscription's pollable, over the service's topics (`crate::shared`).
//!
//! A message from another instance that ends a wait renews the guest's
//! CPU budget, as client input does; its own messages never do (a guest
//! cannot escape `--max-cpu` by publishing to itself).

use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::bindings::current::channels;
use super::books::RequestBooks;
use super::state::InstanceState;
use crate::shared::{ChannelError, Subscription};

/// A guest's subscription: the shared layer's, and the books of the
/// request whose CPU budget its messages renew.
#[derive(Debug)]
pub struct GuestSubscription {
    subscription: Subscription,
    books: Arc<RequestBooks>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestSubscription {
    async fn ready(&mut self) {
        if self.subscription.ready().await {
            self.books.cpu.restart();
        }
    }
}

impl From<ChannelError> for channels::Error {
    fn from(err: ChannelError) -> Self {
        match err {
            ChannelError::BadTopic => Self::BadTopic,
            ChannelError::TooLarge { max, .. } => {
                Self::TooLarge(u32::try_from(max).unwrap_or(u32::MAX))
            }
            ChannelError::Unavailable(why) => Self::Unavailable(why),
            // The contract has no variant of its own for it: the text
            // names the limit and the flag.
            too_many @ ChannelError::TooManySubscriptions { .. } => {
                Self::Unavailable(too_many.to_string())
            }
        }
    }
}

impl channels::Host for InstanceState {
    async fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), channels::Error>> {
        let publisher = self.publisher_id();
        let channels = self.env.share.channels.clone();
        Ok(channels
            .publish(&topic, payload, publisher)
            .await
            .map_err(Into::into))
    }

    async fn subscribe(
        &mut self,
        topic: String,
    ) -> wasmtime::Result<Result<Resource<GuestSubscription>, channels::Error>> {
        let owner = self.publisher_id();
        let channels = self.env.share.channels.clone();
        match channels.subscribe(&topic, owner).await {
            Ok(subscription) => {
                let books = Arc::clone(&self.books);
                let guest = GuestSubscription {
                    subscription,
                    books,
                };
                Ok(Ok(self.table.push(guest)?))
            }
            Err(err) => {
                // Logged once per request: a guest retrying in a loop must
                // not turn the refusal into a log flood.
                if matches!(err, ChannelError::TooManySubscriptions { .. })
                    && !std::mem::replace(&mut self.subscription_refusal_logged, true)
                {
                    tracing::warn!("subscribe refused: {err}");
                }
                Ok(Err(err.into()))
            }
        }
    }
}

impl channels::HostSubscription for InstanceState {
    async fn try_receive(
        &mut self,
        this: Resource<GuestSubscription>,
    ) -> wasmtime::Result<Result<Option<channels::Message>, channels::Error>> {
        let guest = self.table.get(&this)?;
        let message = guest
            .subscription
            .try_receive()
            .map(|message| channels::Message {
                topic: guest.subscription.topic().to_owned(),
                payload: message.payload.to_vec(),
                lost: message.lost,
            });
        Ok(Ok(message))
    }

    async fn subscribe(
        &mut self,
        this: Resource<GuestSubscription>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn topic(&mut self, this: Resource<GuestSubscription>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.subscription.topic().to_owned())
    }

    async fn drop(&mut self, this: Resource<GuestSubscription>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
