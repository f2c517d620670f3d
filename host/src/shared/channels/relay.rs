//! Channels between hosts over Redis pub/sub.
//!
//! Publishing sends `PUBLISH` on a shared multiplexed connection, framed
//! with this process's origin and the publisher's id, and delivers to the
//! process's own subscribers directly; a task holds one subscriber
//! connection per Redis URL, subscribed to every topic that has a
//! subscriber here, and delivers what other processes publish (its own
//! messages it skips). When Redis goes away the task reconnects, with
//! backoff, and subscribes again to every topic; meanwhile `subscribe` and
//! `publish` fail with `unavailable` within [`REDIS_TIMEOUT`].

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink};

use super::super::keyvalue::{REDIS_TIMEOUT, manager_config, query};
use super::queue::{FOREIGN, PublisherId, Queue};
use super::{ChannelError, Hub};

/// What starts every payload this host publishes: a tag, the origin
/// process and the publisher.
const FRAME_TAG: &[u8; 4] = b"wsv1";
const FRAME_LEN: usize = 4 + 8 + 8;

/// The Redis side of one hub.
pub(crate) struct RedisRelay {
    client: redis::Client,
    publisher: ConnectionManager,
    /// The subscriber connection's command half, while connected. Every
    /// SUBSCRIBE and UNSUBSCRIBE goes through this lock, which keeps the
    /// hub's topics and Redis's subscriptions in step.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    /// Woken each time the subscriber connection is (re)made.
    connected: tokio::sync::Notify,
    /// This process, in the frame (random per start).
    origin: u64,
    shown: String,
}

impl std::fmt::Debug for RedisRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRelay")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

fn unavailable(shown: &str, what: impl std::fmt::Display) -> ChannelError {
    ChannelError::Unavailable(format!("redis at {shown}: {what}"))
}

impl RedisRelay {
    pub(super) fn new(client: redis::Client, shown: String) -> Result<Self, String> {
        let publisher = ConnectionManager::new_lazy_with_config(client.clone(), manager_config())
            .map_err(|err| format!("{shown}: {err}"))?;
        let origin = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::process::id(),
        );
        Ok(Self {
            client,
            publisher,
            sink: tokio::sync::Mutex::new(None),
            connected: tokio::sync::Notify::new(),
            origin,
            shown,
        })
    }

    /// Starts the task that receives other hosts' messages for `hub`.
    pub(super) fn start(self: &Arc<Self>, hub: Weak<Hub>) {
        tokio::spawn(Arc::clone(self).receive(hub));
    }

    pub(super) async fn publish(
        &self,
        topic: &str,
        publisher: PublisherId,
        payload: &Bytes,
    ) -> Result<(), ChannelError> {
        let mut framed = Vec::with_capacity(FRAME_LEN + payload.len());
        framed.extend_from_slice(FRAME_TAG);
        framed.extend_from_slice(&self.origin.to_le_bytes());
        framed.extend_from_slice(&publisher.to_le_bytes());
        framed.extend_from_slice(payload);
        let command = redis::cmd("PUBLISH").arg(topic).arg(framed).to_owned();
        match query::<()>(&self.publisher, &command).await {
            Ok(()) => Ok(()),
            Err(Some(err)) => Err(unavailable(&self.shown, err)),
            Err(None) => Err(unavailable(&self.shown, "no answer in time")),
        }
    }

    /// Adds `queue` to `hub` and makes sure Redis sends this host `topic`.
    pub(super) async fn subscribe(
        &self,
        hub: &Hub,
        topic: &Arc<str>,
        queue: &Arc<Queue>,
    ) -> Result<(), ChannelError> {
        // While the subscriber connection is being made (at start, or
        // after Redis came back), wait for it, within the timeout.
        let deadline = tokio::time::Instant::now() + REDIS_TIMEOUT;
        let mut sink = loop {
            let connected = self.connected.notified();
            let Ok(sink) = tokio::time::timeout_at(deadline, self.sink.lock()).await else {
                return Err(unavailable(&self.shown, "busy reconnecting"));
            };
            if sink.is_some() {
                break sink;
            }
            drop(sink);
            if tokio::time::timeout_at(deadline, connected).await.is_err() {
                return Err(unavailable(&self.shown, "not connected (retrying)"));
            }
        };
        let Some(connected) = sink.as_mut() else {
            return Err(unavailable(&self.shown, "not connected (retrying)"));
        };
        hub.add(topic, queue);
        match tokio::time::timeout(REDIS_TIMEOUT, connected.subscribe(&**topic)).await {
            Ok(Ok(())) => Ok(()),
            failed => {
                hub.remove(topic, queue);
                Err(match failed {
                    Ok(Err(err)) => unavailable(&self.shown, err),
                    _ => unavailable(&self.shown, "no answer in time"),
                })
            }
        }
    }

    /// The last subscriber of `topic` here left: unsubscribe, unless one
    /// came back meanwhile.
    pub(super) fn forget(self: &Arc<Self>, hub: &Arc<Hub>, topic: Arc<str>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (relay, hub) = (Arc::clone(self), Arc::downgrade(hub));
        runtime.spawn(async move {
            let mut sink = relay.sink.lock().await;
            let still_wanted = hub.upgrade().is_some_and(|hub| hub.is_subscribed(&topic));
            if let (Some(connected), false) = (sink.as_mut(), still_wanted) {
                let _ = tokio::time::timeout(REDIS_TIMEOUT, connected.unsubscribe(&*topic)).await;
            }
        });
    }

    /// Connects, subscribes to every topic wanted here, delivers messages;
    /// on a lost connection, again, with backoff, while `hub` lives.
    async fn receive(self: Arc<Self>, hub: Weak<Hub>) {
        let mut delay = Duration::from_millis(100);
        let mut outage = false;
        loop {
            if hub.strong_count() == 0 {
                return;
            }
            match self.connect(&hub).await {
                Ok(mut stream) => {
                    if outage {
                        tracing::info!(redis = %self.shown, "channels: reconnected to Redis");
                    }
                    delay = Duration::from_millis(100);
                    while let Some(message) = stream.next().await {
                        let Some(hub) = hub.upgrade() else { return };
                        self.deliver(
                            &hub,
                            message.get_channel_name(),
                            message.get_payload_bytes(),
                        );
                    }
                    *self.sink.lock().await = None;
                    outage = true;
                    tracing::warn!(redis = %self.shown, "channels: lost the connection to Redis; reconnecting");
                }
                Err(err) => {
                    if !outage {
                        tracing::warn!(redis = %self.shown, "channels: cannot reach Redis ({err}); retrying");
                    }
                    outage = true;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// A subscriber connection, subscribed to every topic `hub` wants.
    async fn connect(&self, hub: &Weak<Hub>) -> Result<redis::aio::PubSubStream, String> {
        let pubsub = tokio::time::timeout(REDIS_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| "no answer in time".to_owned())?
            .map_err(|err| err.to_string())?;
        let (mut sink, stream) = pubsub.split();
        let mut slot = self.sink.lock().await;
        let topics = hub
            .upgrade()
            .map(|hub| hub.topic_names())
            .unwrap_or_default();
        for topic in topics {
            tokio::time::timeout(REDIS_TIMEOUT, sink.subscribe(&*topic))
                .await
                .map_err(|_| "no answer in time".to_owned())?
                .map_err(|err| err.to_string())?;
        }
        *slot = Some(sink);
        self.connected.notify_waiters();
        Ok(stream)
    }

    /// Delivers a message from Redis, unless this process published it
    /// (its own subscribers had it already). Another process's publisher
    /// ids mean nothing here: its messages are all foreign.
    fn deliver(&self, hub: &Hub, topic: &str, framed: &[u8]) {
        let payload = match framed.strip_prefix(FRAME_TAG) {
            Some(rest) if rest.len() >= FRAME_LEN - FRAME_TAG.len() => {
                let (origin, rest) = rest.split_at(8);
                if origin == self.origin.to_le_bytes() {
                    return;
                }
                &rest[8..]
            }
            _ => framed,
        };
        hub.deliver(topic, FOREIGN, &Bytes::copy_from_slice(payload));
    }
}
