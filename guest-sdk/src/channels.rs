//! Messages between instances: publish bytes to a topic; subscribe to a
//! topic and read, without blocking, what others publish — beside the
//! request in one `poll`, or as a future in an async handler.
//!
//! A broadcast: every line a client sends goes to every other client.
//!
//! ```no_run
//! use wasmserve_sdk::wasip2::io::poll;
//! use wasmserve_sdk::{Request, channels};
//!
//! fn handle(request: Request) -> Result<(), wasmserve_sdk::Error> {
//!     let room = channels::subscribe("room")?;
//!     loop {
//!         let (readable, message) = (request.subscribe_readable(), room.pollable());
//!         poll::poll(&[&readable, &message]);
//!         while let Some(message) = room.try_receive()? {
//!             request.sendall(&message.payload)?;
//!         }
//!         if let Some(bytes) = request.try_recv(4096)? {
//!             if bytes.is_empty() {
//!                 return Ok(());
//!             }
//!             channels::publish("room", &bytes)?;
//!         }
//!     }
//! }
//!
//! wasmserve_sdk::export_handler!(handle);
//! # fn main() {}
//! ```
//!
//! A subscriber gets every message published after it subscribed, its own
//! included, in each publisher's order. Its queue is bounded: one that
//! falls behind loses the oldest messages, and [`Message::lost`] says how
//! many were lost before the message that carries it.

use crate::bindings::wasmserve::handler::channels as wit;

/// Why a channel call failed.
///
/// ```no_run
/// # fn f() -> Result<(), wasmserve_sdk::channels::Error> {
/// if let Err(wasmserve_sdk::channels::Error::TooLarge(max)) =
///     wasmserve_sdk::channels::publish("room", &[0; 1 << 20])
/// {
///     eprintln!("the host takes {max} bytes at most");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An empty topic, one over 256 bytes, or one with control characters.
    BadTopic,
    /// The message is larger than the host takes; its limit, in bytes.
    TooLarge(u32),
    /// The backend (Redis) cannot be reached now; the host retries.
    Unavailable(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadTopic => f.write_str("bad topic name"),
            Self::TooLarge(max) => write!(f, "message over the host's limit of {max} bytes"),
            Self::Unavailable(why) => write!(f, "channels unavailable: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(err: wit::Error) -> Self {
        match err {
            wit::Error::BadTopic => Self::BadTopic,
            wit::Error::TooLarge(max) => Self::TooLarge(max),
            wit::Error::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        std::io::Error::other(err)
    }
}

/// A message read from a [`Subscription`].
///
/// ```no_run
/// # let room = wasmserve_sdk::channels::subscribe("room")?;
/// if let Some(message) = room.try_receive()? {
///     if message.lost > 0 {
///         eprintln!("fell behind: {} messages lost", message.lost);
///     }
/// }
/// # Ok::<(), wasmserve_sdk::channels::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published to.
    pub topic: String,
    /// The bytes published.
    pub payload: Vec<u8>,
    /// Older messages this subscriber lost just before this one (its queue,
    /// or the service's queues together, were full). When nothing else was
    /// left to read, the message has an empty `payload` and only tells of
    /// the loss.
    pub lost: u64,
}

/// Sends `payload` to every subscriber of `topic`.
///
/// ```no_run
/// wasmserve_sdk::channels::publish("room", b"alice: hi\n")?;
/// # Ok::<(), wasmserve_sdk::channels::Error>(())
/// ```
pub fn publish(topic: &str, payload: &[u8]) -> Result<(), Error> {
    Ok(wit::publish(topic, payload)?)
}

/// Subscribes to `topic`; messages are queued from now until the
/// subscription is dropped.
///
/// ```no_run
/// let room = wasmserve_sdk::channels::subscribe("room")?;
/// # Ok::<(), wasmserve_sdk::channels::Error>(())
/// ```
pub fn subscribe(topic: &str) -> Result<Subscription, Error> {
    Ok(Subscription(wit::subscribe(topic)?))
}

/// A subscription to one topic; dropping it unsubscribes.
///
/// ```no_run
/// let room = wasmserve_sdk::channels::subscribe("room")?;
/// assert_eq!(room.topic(), "room");
/// # Ok::<(), wasmserve_sdk::channels::Error>(())
/// ```
#[derive(Debug)]
pub struct Subscription(wit::Subscription);

impl Subscription {
    /// The next queued message, without waiting: `None` when there is none.
    ///
    /// ```no_run
    /// # let room = wasmserve_sdk::channels::subscribe("room")?;
    /// while let Some(message) = room.try_receive()? { /* … */ }
    /// # Ok::<(), wasmserve_sdk::channels::Error>(())
    /// ```
    pub fn try_receive(&self) -> Result<Option<Message>, Error> {
        Ok(self.0.try_receive()?.map(|message| Message {
            topic: message.topic,
            payload: message.payload,
            lost: message.lost,
        }))
    }

    /// The same as [`Subscription::try_receive`], under the request's
    /// vocabulary (`Request::try_recv`).
    ///
    /// ```no_run
    /// # let room = wasmserve_sdk::channels::subscribe("room")?;
    /// while let Some(message) = room.try_recv()? { /* … */ }
    /// # Ok::<(), wasmserve_sdk::channels::Error>(())
    /// ```
    pub fn try_recv(&self) -> Result<Option<Message>, Error> {
        self.try_receive()
    }

    /// The same as [`Subscription::receive`], under the request's
    /// vocabulary (`aio::Request::recv`).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), wasmserve_sdk::channels::Error> {
    /// let room = wasmserve_sdk::channels::subscribe("room")?;
    /// let message = room.recv().await?;
    /// # Ok(()) }
    /// ```
    pub async fn recv(&self) -> Result<Message, Error> {
        self.receive().await
    }

    /// A WASI pollable, ready while a message is queued; pass it to
    /// `wasip2::io::poll::poll` beside the request's and timers'.
    ///
    /// ```no_run
    /// # let room = wasmserve_sdk::channels::subscribe("room")?;
    /// wasmserve_sdk::wasip2::io::poll::poll(&[&room.pollable()]);
    /// # Ok::<(), wasmserve_sdk::channels::Error>(())
    /// ```
    pub fn pollable(&self) -> wasip2::io::poll::Pollable {
        self.0.subscribe()
    }

    /// Waits for the next message (async handlers).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), wasmserve_sdk::channels::Error> {
    /// let room = wasmserve_sdk::channels::subscribe("room")?;
    /// let message = room.receive().await?;
    /// # Ok(()) }
    /// ```
    pub async fn receive(&self) -> Result<Message, Error> {
        loop {
            if let Some(message) = self.try_receive()? {
                return Ok(message);
            }
            wstd::runtime::AsyncPollable::new(self.pollable())
                .wait_for()
                .await;
        }
    }

    /// The topic.
    ///
    /// ```no_run
    /// # let room = wasmserve_sdk::channels::subscribe("room")?;
    /// println!("listening to {}", room.topic());
    /// # Ok::<(), wasmserve_sdk::channels::Error>(())
    /// ```
    pub fn topic(&self) -> String {
        self.0.topic()
    }
}
