//! `request.hand-off` (contract 0.2.2): the handler picks an upstream, the
//! host connects to it at once (so the handler learns of a refusal and can
//! try another), and once `handle` has returned and the instance is gone,
//! the host relays the connection's bytes both ways (`relay.rs`).
//!
//! A hand-off is an outbound connection like any other: only to an address
//! `--allow-connect` lists, one of the request's `--max-outbound` sockets,
//! within `--connect-timeout`, counted in `wasmserve_outbound_connections_total`
//! and its bytes in `wasmserve_upstream_bytes_total` under the allow-list
//! entry that let it through.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use wasmtime::component::Resource;

use super::bindings::current::HandOffError;
use super::connection::Connection;
use super::guest_text::sanitize;
use super::held_upstream::HeldUpstream;
use super::relay::{RelayEnd, relay};
use super::request::Request;
use super::state::{InstanceState, OutboundResult, UpstreamTally};

/// The most bytes `first` may hold: what a handler reads to choose an
/// upstream is a line or a hello, not a body.
const MAX_FIRST: usize = 64 * 1024;

/// The most characters of a guest-given address quoted back.
const MAX_ADDRESS_CHARS: usize = 64;

/// A connection handed to an upstream, waiting for `handle` to return.
pub(crate) struct HandOff {
    client: Arc<Connection>,
    upstream: TcpStream,
    /// The allow-list entry that let the upstream through, for the log.
    label: Arc<str>,
    tally: Arc<dyn UpstreamTally>,
    first: Vec<u8>,
    /// When the request's `--max-lifetime` ends the relay, if it has one.
    deadline: Option<tokio::time::Instant>,
}

impl InstanceState {
    /// Connects to `upstream` for the request `this`, to relay to once the
    /// handler returns; or says why not (the request stays the handler's).
    pub(super) async fn hand_off(
        &mut self,
        this: &Resource<Request>,
        upstream: &str,
        first: Vec<u8>,
    ) -> wasmtime::Result<Result<(), HandOffError>> {
        let client = self.connection(this)?;
        if !client.is_stream() {
            return Ok(Err(HandOffError::Unsupported(
                "a datagram cannot be handed off: only a connection can".to_owned(),
            )));
        }
        if self.hand_off.is_some() {
            return Ok(Err(HandOffError::Unsupported(
                "this request was handed off already".to_owned(),
            )));
        }
        if first.len() > MAX_FIRST {
            return Ok(Err(HandOffError::Unsupported(format!(
                "`first` holds {} bytes; at most {MAX_FIRST} may go ahead of the client's",
                first.len()
            ))));
        }
        let Ok(addr) = upstream.parse::<SocketAddr>() else {
            return Ok(Err(HandOffError::InvalidAddress(format!(
                "{:?} is not an IP:PORT (host names are not looked up)",
                sanitize(upstream, MAX_ADDRESS_CHARS)
            ))));
        };
        let policy = Arc::clone(&self.env.outbound);
        if !policy.permits(addr) {
            let why = policy.not_allowed(addr);
            self.refuse_outbound(|| why.clone());
            return Ok(Err(HandOffError::Denied(why)));
        }
        if let Err((_, why)) = self.take_socket_or_why("TCP") {
            return Ok(Err(HandOffError::Denied(why)));
        }
        let observer = Arc::clone(&self.books.observer);
        observer.outbound(OutboundResult::Allowed);
        let upstream =
            match tokio::time::timeout(policy.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(upstream)) => upstream,
                Ok(Err(err)) => return Ok(Err(HandOffError::Refused(format!("{addr}: {err}")))),
                Err(_) => {
                    observer.outbound(OutboundResult::TimedOut);
                    return Ok(Err(HandOffError::TimedOut));
                }
            };
        // Small messages go at once, as on the client's side.
        let _ = upstream.set_nodelay(true);
        let label = policy.label_for(addr).unwrap_or_else(|| "unknown".into());
        self.hand_off = Some(HandOff {
            client,
            upstream,
            tally: observer.upstream(&label),
            label,
            first,
            deadline: None,
        });
        Ok(Ok(()))
    }
}

impl HandOff {
    /// The same hand-off, ended at `deadline` (the request's lifetime).
    pub(super) fn within(mut self, deadline: Option<tokio::time::Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Relays until both sides have ended, one fails, nothing moved for
    /// `idle`, or the request's lifetime is over; how it ended goes to the
    /// debug log in `span` (entered only for those lines: the relay runs
    /// outside the request's span, which would otherwise be entered and
    /// left at every wake-up).
    pub(crate) async fn run(self, idle: Option<Duration>, span: &tracing::Span) {
        let Self {
            client,
            upstream,
            label,
            tally,
            first,
            deadline,
        } = self;
        span.in_scope(
            || tracing::debug!(upstream = %label, "relaying to the upstream the handler chose"),
        );
        // What the handler wrote before handing off goes first.
        let flushed = match idle {
            Some(idle) => tokio::time::timeout(idle, client.flush()).await.ok(),
            None => Some(client.flush().await),
        };
        if !matches!(flushed, Some(Ok(()))) {
            span.in_scope(|| tracing::debug!("relay not started: the client took no bytes"));
            return;
        }
        let upstream = HeldUpstream::new(upstream);
        let relayed = relay(&client, &upstream, &tally, first, idle);
        let ended = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, relayed).await.ok(),
            None => Some(relayed.await),
        };
        span.in_scope(|| match ended {
            None => tracing::debug!("relay ended: the request's --max-lifetime is over"),
            Some(Ok(())) => tracing::debug!("relay ended: both sides closed"),
            Some(Err(RelayEnd::Idle(idle))) => {
                tracing::debug!(
                    ?idle,
                    "relay ended: nothing moved either way for --idle-timeout"
                )
            }
            Some(Err(RelayEnd::Failed { upstream, error })) => tracing::debug!(
                side = if upstream { "upstream" } else { "client" },
                %error,
                "relay ended: a side failed"
            ),
        });
    }
}
