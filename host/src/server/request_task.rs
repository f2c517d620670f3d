//! A request's way from the listener to its handler: the gate (access
//! lists, rate, PROXY header), the source's registration, a slot in arrival
//! order, then a task that serves it inside the span every log line of the
//! request carries, and logs its access line when it ends. The PROXY
//! header and the TLS handshake are `prologue.rs`'s.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::net::TcpStream;
use tracing::Instrument;

use super::Server;
use super::access_log::{self, Outcome};
use super::admission::Admission;
use super::gate::Refusal;
use super::slots::Slot;
use super::stop_wait::StopWait;
use crate::net::{Incoming, TlsTerminator, Transport};
use crate::wasm::{Activity, FailureCause, HandOff, Handler, InstanceChoice, Request};

impl Server {
    /// Takes what a listener received: screened by the gate at once; with
    /// the PROXY protocol on, its header is read in a task of its own (the
    /// listener's pending permit bounds how many wait), and the client it
    /// names is screened in turn; then the request starts.
    pub(super) fn spawn_request(self: &Arc<Self>, incoming: Incoming, admission: Admission) {
        let proxied = self.gate.rules().proxy_protocol();
        // Known once (from `accept`, or the datagram); everything below uses it.
        let peer = peer_addr(&incoming);
        if let Some(peer) = peer {
            let screened = match (&incoming, proxied) {
                (Incoming::Tcp(..), true) => self.gate.trusts_proxy(peer.ip()),
                (Incoming::Tcp(..), false) => self.gate.admit(peer.ip()),
                // Datagrams: the access lists only (no connection to rate).
                _ => self.gate.allows(peer.ip()),
            };
            if let Err(refusal) = screened {
                self.refuse(peer.ip(), refusal);
                return;
            }
        }
        match (incoming, peer) {
            (Incoming::Tcp(stream, _), Some(peer)) if proxied => {
                let server = Arc::clone(self);
                let header_wait = self.header_waits.enter();
                self.tasks.spawn(async move {
                    let header = server.proxy_header(stream, peer, &header_wait).await;
                    drop(header_wait);
                    let Some((stream, client)) = header else {
                        return;
                    };
                    // A header naming no client (v2 LOCAL, v1 UNKNOWN, an
                    // AF_UNIX pair) is the balancer's own connection: the
                    // access lists and the rate apply to the balancer.
                    let screened = client.unwrap_or(peer).ip();
                    if let Err(refusal) = server.gate.admit(screened) {
                        server.refuse(screened, refusal);
                        return;
                    }
                    let from = ClientAddr {
                        client: client.unwrap_or(peer),
                        proxied: client.is_some(),
                    };
                    server.start_request(Incoming::Tcp(stream, peer), Some(from), admission);
                });
            }
            (incoming, peer) => {
                let from = peer.map(|client| ClientAddr {
                    client,
                    proxied: false,
                });
                self.start_request(incoming, from, admission)
            }
        }
    }

    /// Registers the request's source (a stream connection from a source
    /// that has its `--max-connections-per-source` already is closed at
    /// once), takes its place in the queue for a slot, and serves it in
    /// its own task. `from` is where it came from (the client a PROXY
    /// header named, or the socket's peer), for IP transports.
    fn start_request(
        self: &Arc<Self>,
        incoming: Incoming,
        from: Option<ClientAddr>,
        admission: Admission,
    ) {
        let id = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let Admission { pending, budget } = admission;
        let activity = Activity::new();
        let source = match &incoming {
            Incoming::Tcp(..) => from.map(|from| from.client.ip()),
            _ => None,
        };
        // One token ends the request early, for either reason: a shutdown
        // cut (it is the cut's child) or eviction (the registry cancels it).
        // A request without a source is never evicted: the cut's own token.
        let stop = match source {
            Some(_) => self.shutdown.request_token(),
            None => self.shutdown.cut_token(),
        };
        let registration = match source {
            Some(source) => {
                match self
                    .sources
                    .register(source, id, Arc::clone(&activity), stop.clone())
                {
                    Some(registration) => Some(registration),
                    None => {
                        self.refuse(source, Refusal::PerSource);
                        return;
                    }
                }
            }
            None => None,
        };
        // The whole request runs on the version current now, even if the
        // handler is swapped meanwhile.
        let handler = self.handler.current();
        if let (Some(budget), Some((_, max))) = (budget, &self.budget) {
            budget.forget();
            if id >= *max {
                tracing::info!(
                    max_requests = max,
                    "served the requested number of requests; stopping"
                );
                self.shutdown.stop_accepting();
            }
        }
        let arrival = match (incoming, &self.tls, from) {
            (Incoming::Tcp(stream, _), Some(tls), Some(from)) => Arrival::Handshake {
                stream,
                client: from.client,
                tls: Arc::clone(tls),
            },
            (incoming, _, from) => {
                let mut request =
                    Request::new(incoming, self.limits.read_timeouts(), Arc::clone(&activity));
                if let Some(ClientAddr {
                    client,
                    proxied: true,
                }) = from
                {
                    request.set_peer_addr(client);
                }
                Arrival::Plain(request)
            }
        };
        let transport = arrival.transport();
        let span = tracing::info_span!(
            "conn",
            id,
            peer = %arrival.peer(),
            transport = transport.as_str(),
            handler = handler.name(),
            version = handler.hash()
        );
        if transport.is_datagram() {
            self.metrics.datagrams.inc();
        } else {
            self.metrics.accepted(transport.as_str());
        }
        let slot = self.queue_for_slot(source);
        let server = Arc::clone(self);
        let serving_span = span.clone();
        // Boxed: the request's future (~3.3 KiB) is copied once, into its
        // box, instead of at every move on its way into the runtime's task
        // cell (three copies, and one more when the finished task's stage
        // is overwritten): `memmove` was 7.6 % of a datagram's CPU, 4.6 %
        // boxed.
        self.tasks.spawn(Box::pin(async move {
            let mut stopped = std::pin::pin!(StopWait::new(stop));
            // In the request's span (entered at every wake-up): the wait for
            // a slot and the handler.
            let served = async {
                // A waiting request may be shed (the waiting room was full
                // and its source had the most waiting) or cut by shutdown.
                let queued = matches!(slot, Slot::Queued(_));
                if queued {
                    server.metrics.waiting.inc();
                }
                let slot = tokio::select! {
                    biased;
                    slot = server.wait_for_slot(slot) => slot,
                    () = &mut stopped => {
                        if let (Some(source), false) = (source, server.shutdown.is_cut()) {
                            server.refuse(source, Refusal::Shed);
                        }
                        None
                    }
                };
                if queued {
                    server.metrics.waiting.dec();
                }
                let Some(slot) = slot else {
                    tracing::debug!("closed unserved: the service stopped accepting");
                    return None;
                };
                drop(pending);
                if let Some(registration) = &registration {
                    registration.serving();
                }
                server.metrics.active.inc();
                let started = Instant::now();
                // Biased: no random branch order to draw at every wake-up.
                let serve = async {
                    let request = match arrival {
                        Arrival::Plain(request) => request,
                        Arrival::Handshake {
                            stream,
                            client,
                            tls,
                        } => match server.handshake(stream, client, &tls, &activity).await {
                            Some(request) => request,
                            None => return (Outcome::TlsHandshake, None),
                        },
                    };
                    server.serve_request(&handler, request).await
                };
                let (outcome, hand_off) = tokio::select! {
                    biased;
                    served = serve => served,
                    () = &mut stopped => (server.stopped_early(started, source), None),
                };
                Some((outcome, hand_off, started, slot))
            }
            .instrument(serving_span)
            .await;
            let Some((mut outcome, hand_off, started, slot)) = served else {
                return;
            };
            // A handed-off connection's relay runs outside the span, with
            // only the shutdown token beside it: nothing else to poll at
            // each of its wake-ups.
            if let Some(hand_off) = hand_off {
                tokio::select! {
                    biased;
                    () = hand_off.run(server.limits.idle_timeout, &span) => {}
                    () = &mut stopped => {
                        outcome = span.in_scope(|| server.stopped_early(started, source));
                    }
                }
            }
            let took = started.elapsed();
            server.metrics.duration.observe(took.as_secs_f64());
            server.metrics.active.dec();
            span.in_scope(|| access_log::served(outcome, took, &activity));
            drop(slot);
            drop(registration);
        }));
    }

    /// Serves one request to the end; how it ended. Whatever the guest
    /// does, only this request is affected. A request whose TCP client
    /// reset the connection ends `--hangup-grace` later if its handler has
    /// not returned by then (a guest waiting on its client fails at once;
    /// one waiting on anything else would hold what it has until then).
    async fn serve_request(
        &self,
        handler: &Handler,
        request: Request,
    ) -> (Outcome, Option<HandOff>) {
        let started = Instant::now();
        tracing::debug!(local = request.local_addr(), "request started");
        let instance = match self.reuse_datagram_instances && request.is_datagram() {
            true => InstanceChoice::Warm,
            false => InstanceChoice::Fresh,
        };
        let conn = Arc::clone(request.connection());
        let hung_up = async {
            conn.reset_by_peer().await;
            tokio::time::sleep(self.limits.hangup_grace).await;
        };
        let served = tokio::select! {
            biased;
            served = handler.handle(request, instance, &self.limits, &self.observer) => served,
            () = hung_up => {
                self.metrics.refused("hung_up");
                tracing::debug!(
                    grace = ?self.limits.hangup_grace,
                    "request ended: its client reset the connection and the handler had not returned within --hangup-grace"
                );
                return (Outcome::HungUp, None);
            }
        };
        let outcome = match served {
            Ok(hand_off) => return (Outcome::Ok, hand_off),
            // A client hanging up is normal: no failure, no error line.
            Err(err) if err.cause == FailureCause::ClientClosed => {
                tracing::debug!(error = %err, "request ended: the client closed the connection");
                Outcome::ClientClosed
            }
            Err(err) => {
                self.failures.record(err.cause);
                self.metrics.failure(err.cause);
                tracing::error!(
                    cause = err.cause.as_str(),
                    error = %err,
                    elapsed = ?started.elapsed(),
                    "request ended by handler failure"
                );
                Outcome::Failed(err.cause)
            }
        };
        (outcome, None)
    }

    /// A request ended before its handler returned: cut by shutdown, or
    /// evicted to make room on a full server.
    fn stopped_early(&self, started: Instant, source: Option<IpAddr>) -> Outcome {
        if self.shutdown.is_cut() {
            self.cut.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(elapsed = ?started.elapsed(), "request cut by shutdown");
            return Outcome::Cut;
        }
        // Counted, and logged once a second at most: under attack there
        // is one eviction per newcomer.
        match source {
            Some(source) => self.refuse(source, Refusal::Evicted),
            None => self.metrics.refused(Refusal::Evicted.as_str()),
        }
        Outcome::Evicted
    }
}

/// A request as it waits for its slot: ready to serve, or a TLS
/// connection whose handshake comes first (once it holds a slot, so that a
/// client stalling its handshake is held like any idle one).
enum Arrival {
    Plain(Request),
    Handshake {
        stream: TcpStream,
        /// The client (the socket's peer, or the PROXY header's).
        client: SocketAddr,
        tls: Arc<TlsTerminator>,
    },
}

impl Arrival {
    fn transport(&self) -> Transport {
        match self {
            Self::Plain(request) => request.transport(),
            Self::Handshake { .. } => Transport::Tcp,
        }
    }

    /// The peer the request's span names.
    fn peer(&self) -> &dyn std::fmt::Display {
        match self {
            Self::Plain(request) => request.peer_addr_text(),
            Self::Handshake { client, .. } => client,
        }
    }
}

/// Where an IP request came from.
#[derive(Debug, Clone, Copy)]
struct ClientAddr {
    /// The client: the socket's peer, or the one a PROXY header named.
    client: SocketAddr,
    /// Whether a PROXY header named it.
    proxied: bool,
}

/// The address an IP request came from: the peer `accept` returned, or the
/// datagram's sender.
fn peer_addr(incoming: &Incoming) -> Option<SocketAddr> {
    match incoming {
        Incoming::Tcp(_, peer) => Some(*peer),
        Incoming::Datagram(datagram) => datagram.reply.peer_socket_addr(),
        Incoming::Unix(_) | Incoming::Tls(_) => None,
    }
}
