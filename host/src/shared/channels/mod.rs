//! Pub/sub channels: a process-wide [`Hub`] per backend fans each message
//! out to the bounded queues of its topic's subscribers; with Redis, a
//! [`relay::RedisRelay`] carries messages between hosts.
//!
//! Each publish pushes into every subscriber's queue before it returns, so
//! a publisher's messages arrive in the order it sent them; messages from
//! other hosts arrive in the order Redis delivers them (also each
//! publisher's order).

mod queue;
mod relay;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

pub(crate) use self::queue::PublisherId;
use self::queue::{FOREIGN, Queue};
pub(super) use self::relay::RedisRelay;
use super::limits::StateLimits;
use super::observer::StateObserver;
use super::spec::space_of;

/// The longest topic name, in bytes.
const MAX_TOPIC_BYTES: usize = 256;

/// Why a channel operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChannelError {
    /// Empty, too long, or with control characters.
    #[error("bad topic name: 1 to 256 bytes, no control characters")]
    BadTopic,
    /// The payload is over `--channel-max-message`.
    #[error("message of {len} bytes is over the limit of {max} (--channel-max-message)")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Redis cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The request, or the service, holds as many subscriptions as it may.
    #[error("{scope} holds {max} subscriptions, the most it may ({}); drop one first", scope.flag())]
    TooManySubscriptions {
        /// The limit reached.
        max: usize,
        /// Whose.
        scope: SubscriptionScope,
    },
}

/// Whose subscriptions a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscriptionScope {
    /// One request's (its instance's).
    Request,
    /// All of one service's requests together.
    Service,
}

impl SubscriptionScope {
    /// The flag that sets the limit.
    fn flag(self) -> &'static str {
        match self {
            Self::Request => "--channel-subscriptions-per-request",
            Self::Service => "--channel-subscriptions",
        }
    }
}

impl std::fmt::Display for SubscriptionScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Request => "this request",
            Self::Service => "this service",
        })
    }
}

/// One message read from a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// The bytes published.
    pub(crate) payload: Bytes,
    /// Messages this subscriber lost just before this one.
    pub(crate) lost: u64,
}

/// Every subscriber of every topic on one backend, in this process.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    topics: Mutex<HashMap<Arc<str>, Vec<Arc<Queue>>>>,
    /// Set for `redis://`: messages also go to and come from Redis.
    relay: Option<Arc<RedisRelay>>,
}

impl Hub {
    /// A hub for one process only.
    pub(super) fn local() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A hub joined to others through Redis (starts the relay's task).
    pub(super) fn over_redis(client: redis::Client, shown: String) -> Result<Arc<Self>, String> {
        let relay = Arc::new(RedisRelay::new(client, shown)?);
        let hub = Arc::new(Self {
            topics: Mutex::default(),
            relay: Some(Arc::clone(&relay)),
        });
        relay.start(Arc::downgrade(&hub));
        Ok(hub)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Vec<Arc<Queue>>>> {
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `payload` for every subscriber of `topic` in this process.
    fn deliver(&self, topic: &str, publisher: PublisherId, payload: &Bytes) {
        if let Some(queues) = self.lock().get(topic) {
            for queue in queues {
                queue.push(publisher, payload.clone());
            }
        }
    }

    fn add(&self, topic: &Arc<str>, queue: &Arc<Queue>) {
        self.lock()
            .entry(Arc::clone(topic))
            .or_default()
            .push(Arc::clone(queue));
    }

    /// Removes `queue`; whether `topic` has no subscriber left here.
    fn remove(&self, topic: &str, queue: &Arc<Queue>) -> bool {
        let mut topics = self.lock();
        let Some(queues) = topics.get_mut(topic) else {
            return true;
        };
        queues.retain(|other| !Arc::ptr_eq(other, queue));
        let empty = queues.is_empty();
        if empty {
            topics.remove(topic);
        }
        empty
    }

    fn is_subscribed(&self, topic: &str) -> bool {
        self.lock().contains_key(topic)
    }

    fn topic_names(&self) -> Vec<Arc<str>> {
        self.lock().keys().cloned().collect()
    }
}

/// A fresh publisher id for an instance (never [`FOREIGN`]).
pub(crate) fn next_publisher_id() -> PublisherId {
    static NEXT: AtomicU64 = AtomicU64::new(FOREIGN + 1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A service's view of the channels: its own topics and the shared ones.
#[derive(Debug, Clone)]
pub(crate) struct ServiceChannels {
    hub: Arc<Hub>,
    /// The service's subscribers' queues, and their bytes together.
    queued: Arc<queue::ServiceQueues>,
    service: Arc<str>,
    shared: Arc<BTreeSet<String>>,
    limits: StateLimits,
    observer: Arc<dyn StateObserver>,
}

impl ServiceChannels {
    pub(super) fn new(
        hub: Arc<Hub>,
        service: &str,
        shared: BTreeSet<String>,
        limits: StateLimits,
        observer: Arc<dyn StateObserver>,
    ) -> Self {
        Self {
            hub,
            queued: Arc::default(),
            service: service.into(),
            shared: Arc::new(shared),
            limits,
            observer,
        }
    }

    /// The topic's name in the hub (and in Redis).
    fn full_name(&self, topic: &str) -> Result<Arc<str>, ChannelError> {
        let valid = !topic.is_empty()
            && topic.len() <= MAX_TOPIC_BYTES
            && !topic.chars().any(char::is_control);
        if !valid {
            return Err(ChannelError::BadTopic);
        }
        let space = space_of(&self.service, &self.shared, topic);
        Ok(format!("wasmserve:{space}/{topic}").into())
    }

    /// Sends `payload` to every subscriber of `topic`, here and, with Redis,
    /// on every other host.
    pub(crate) async fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        publisher: PublisherId,
    ) -> Result<(), ChannelError> {
        let full = self.full_name(topic)?;
        if payload.len() > self.limits.max_message_bytes {
            return Err(ChannelError::TooLarge {
                len: payload.len(),
                max: self.limits.max_message_bytes,
            });
        }
        let payload = Bytes::from(payload);
        if let Some(relay) = &self.hub.relay {
            relay.publish(&full, publisher, &payload).await?;
        }
        self.hub.deliver(&full, publisher, &payload);
        self.observer.published();
        Ok(())
    }

    /// Subscribes `owner` (an instance) to `topic`.
    pub(crate) async fn subscribe(
        &self,
        topic: &str,
        owner: PublisherId,
    ) -> Result<Subscription, ChannelError> {
        let full = self.full_name(topic)?;
        if let Err(refused) = self.queued.reserve(owner, &self.limits) {
            self.observer.subscription_refused();
            return Err(refused);
        }
        let queue = Arc::new(Queue::new(
            owner,
            self.limits,
            Arc::clone(&self.queued),
            Arc::clone(&self.observer),
        ));
        self.queued.add(&queue);
        match &self.hub.relay {
            Some(relay) => relay.subscribe(&self.hub, &full, &queue).await?,
            None => self.hub.add(&full, &queue),
        }
        Ok(Subscription {
            queue,
            topic: topic.to_owned(),
            full,
            hub: Arc::clone(&self.hub),
        })
    }
}

/// One subscriber's end of a topic; dropping it unsubscribes.
#[derive(Debug)]
pub(crate) struct Subscription {
    queue: Arc<Queue>,
    topic: String,
    full: Arc<str>,
    hub: Arc<Hub>,
}

impl Subscription {
    /// The topic as the guest named it.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// The next queued message, without waiting.
    pub(crate) fn try_receive(&self) -> Option<Message> {
        self.queue
            .pop()
            .map(|(payload, lost)| Message { payload, lost })
    }

    /// Waits until a message is queued; whether the wait was ended by
    /// another publisher's message (which renews the guest's CPU budget).
    pub(crate) async fn ready(&self) -> bool {
        self.queue.ready().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let last = self.hub.remove(&self.full, &self.queue);
        if last && let Some(relay) = &self.hub.relay {
            relay.forget(&self.hub, Arc::clone(&self.full));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::observer::Unobserved;

    fn channels(limits: StateLimits) -> ServiceChannels {
        ServiceChannels::new(
            Hub::local(),
            "svc",
            BTreeSet::new(),
            limits,
            Arc::new(Unobserved),
        )
    }

    #[tokio::test]
    async fn many_subscriptions_stay_within_the_service_total() {
        let limits = StateLimits {
            queue_total_bytes: 10_000,
            ..StateLimits::default()
        };
        let channels = channels(limits);
        let mut subscriptions = Vec::new();
        for topic in 0..20 {
            subscriptions.push(channels.subscribe(&topic.to_string(), 1).await);
        }
        for round in 0..50 {
            for topic in 0..20 {
                let sent = channels
                    .publish(&topic.to_string(), vec![round; 100], 2)
                    .await;
                assert_eq!(sent, Ok(()));
            }
        }
        assert!(channels.queued.bytes() <= 10_000);
        let mut got = 0;
        let mut lost = 0;
        for subscription in subscriptions.iter().flatten() {
            while let Some(message) = subscription.try_receive() {
                got += 1;
                lost += message.lost;
            }
        }
        assert_eq!(got + lost, 1000);
        assert!(got <= 100, "{got}");
        drop(subscriptions);
        assert_eq!(channels.queued.bytes(), 0);
    }

    #[tokio::test]
    async fn a_publisher_order_is_kept_and_bad_topics_refused() {
        let channels = channels(StateLimits::default());
        let sub = channels.subscribe("room", 1).await.ok();
        for n in 0..100u8 {
            assert_eq!(channels.publish("room", vec![n], 2).await, Ok(()));
        }
        let received: Vec<u8> = std::iter::from_fn(|| sub.as_ref()?.try_receive())
            .map(|message| message.payload[0])
            .collect();
        assert_eq!(received, (0..100).collect::<Vec<u8>>());
        assert_eq!(
            channels.publish("", vec![], 2).await,
            Err(ChannelError::BadTopic)
        );
        let big = channels.publish("room", vec![0; 65 * 1024], 2).await;
        assert!(matches!(big, Err(ChannelError::TooLarge { .. })), "{big:?}");
    }
}
