//! Outbound connections: the one check wasmtime-wasi's `wasi:sockets` asks
//! before a guest binds, connects, sends or receives. Denied by default;
//! a service's allow-list opens exactly the addresses and ports it names.
//!
//! - Connecting (TCP) and sending (UDP) go only to allow-listed addresses,
//!   and at most `max_per_request` TCP connections per request, each
//!   given `connect_timeout` to connect (`connect_deadline.rs`).
//! - Binding is allowed only to the wildcard address and port 0 (the
//!   implicit bind of a connect, or a UDP socket's ephemeral port);
//!   listening and accepting are always refused: a guest cannot serve.
//! - Datagrams from addresses outside the list are dropped.
//! - Name lookups stay off (no DNS from the guest: no exfiltration channel,
//!   no widening of the list); allow-listed host names are resolved by the
//!   host at start.
//!
//! A refusal reaches the guest as `access-denied` (Rust: `PermissionDenied`)
//! and is logged once per request, in the request's span; every TCP
//! connect is counted, granted or refused (`RequestObserver::outbound`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use wasmtime_wasi::sockets::SocketAddrUse;

use super::state::{OutboundResult, RequestObserver};
use crate::net::AllowRule;

/// The TCP connections one request may open unless configured.
pub(crate) const DEFAULT_MAX_OUTBOUND: u32 = 8;

/// What one request may send as UDP datagrams to allowed addresses
/// (`--max-outbound-datagrams`, `--max-outbound-datagram-bytes`): without
/// it, one client datagram could make a handler send hundreds of MB a
/// second, bounded only by its CPU budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DatagramBudget {
    /// Datagrams.
    pub(crate) datagrams: u32,
    /// Bytes of their payloads.
    pub(crate) bytes: u64,
}

impl Default for DatagramBudget {
    fn default() -> Self {
        Self {
            datagrams: 1_000,
            bytes: 1024 * 1024,
        }
    }
}

/// What a service's guests may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutboundPolicy {
    /// The resolved allow-list; empty: nothing.
    pub(crate) rules: Vec<AllowRule>,
    /// Sockets per request (so TCP connections).
    pub(crate) max_per_request: u32,
    /// How long one TCP connect may take before it fails with `timeout`.
    pub(crate) connect_timeout: Duration,
    /// UDP datagrams and bytes per request.
    pub(crate) datagrams: DatagramBudget,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            max_per_request: DEFAULT_MAX_OUTBOUND,
            datagrams: DatagramBudget::default(),
            connect_timeout: super::connect_deadline::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// The check's signature, as wasmtime-wasi wants it.
type Check = dyn Fn(SocketAddr, SocketAddrUse) -> Pin<Box<dyn Future<Output = bool> + Send + Sync>>
    + Send
    + Sync;

impl OutboundPolicy {
    /// Whether any address is allowed at all.
    pub(crate) fn is_open(&self) -> bool {
        !self.rules.is_empty()
    }

    pub(crate) fn permits(&self, addr: SocketAddr) -> bool {
        self.rules.iter().any(|rule| rule.permits(addr))
    }

    /// The allow-list entry that lets `addr` through, as written.
    pub(crate) fn label_for(&self, addr: SocketAddr) -> Option<Arc<str>> {
        self.rules
            .iter()
            .find(|rule| rule.permits(addr))
            .map(AllowRule::label)
    }

    /// The check for one instance's WASI context: it counts that
    /// instance's connections and logs its first refusal.
    pub(crate) fn check_for_instance(
        self: &Arc<Self>,
        observer: Arc<dyn RequestObserver>,
    ) -> Box<Check> {
        let policy = Arc::clone(self);
        let made = AtomicU32::new(0);
        let logged = AtomicBool::new(false);
        Box::new(move |addr, usage| {
            let verdict = policy.decide(addr, usage, &made);
            if let Err(why) = &verdict
                && !matches!(usage, SocketAddrUse::UdpReceive)
                && !logged.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(%addr, "outbound refused: {why}");
            }
            let allowed = verdict.is_ok();
            if matches!(usage, SocketAddrUse::TcpConnect) {
                observer.outbound(match allowed {
                    true => OutboundResult::Allowed,
                    false => OutboundResult::Refused,
                });
            }
            Box::pin(async move { allowed })
        })
    }

    /// Why `addr` is refused, in words naming the flag.
    pub(crate) fn not_allowed(&self, addr: SocketAddr) -> String {
        match self.is_open() {
            true => format!("{addr} is not in --allow-connect"),
            false => format!(
                "{addr}: this service has no --allow-connect (handlers connect nowhere by default)"
            ),
        }
    }

    fn decide(
        &self,
        addr: SocketAddr,
        usage: SocketAddrUse,
        made: &AtomicU32,
    ) -> Result<(), String> {
        match usage {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                match addr.ip().is_unspecified() && addr.port() == 0 {
                    true => Ok(()),
                    false => Err("binding an address or port (guests cannot serve)".to_owned()),
                }
            }
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => {
                Err("listening (guests cannot serve)".to_owned())
            }
            SocketAddrUse::TcpConnect => {
                if !self.permits(addr) {
                    return Err(self.not_allowed(addr));
                }
                let before = made.fetch_add(1, Ordering::Relaxed);
                match before < self.max_per_request {
                    true => Ok(()),
                    false => Err(format!(
                        "more than {} connections in one request (--max-outbound)",
                        self.max_per_request
                    )),
                }
            }
            SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => match self.permits(addr) {
                true => Ok(()),
                false => Err(self.not_allowed(addr)),
            },
        }
    }
}
