//! What a connection does before its handler is chosen: the PROXY protocol
//! header a load balancer sends first, and the TLS handshake the host
//! terminates. Each is bounded in time, and a connection that fails either
//! is refused (counted, logged at most once a second), never handed to a
//! guest.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use super::Server;
use super::gate::Refusal;
use super::header_waits::HeaderWait;
use crate::net::{Incoming, TlsConnection, TlsTerminator, read_proxy_header, relay};
use crate::wasm::{Activity, Request};

/// How long a load balancer may take to send a connection's PROXY header
/// (it sends it at once, in the connection's first segment).
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a TLS handshake may take when reads have no idle timeout.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(300);

impl Server {
    /// Reads the PROXY header `stream` (from `peer`) begins with: the
    /// stream and the client it names (`None`: a header naming none, such
    /// as a health check's). A connection without a valid one in time is
    /// refused; one still reading when the waiting room is full and it has
    /// waited longest (`wait`) is closed to make room.
    pub(super) async fn proxy_header(
        &self,
        mut stream: TcpStream,
        peer: SocketAddr,
        wait: &HeaderWait,
    ) -> Option<(TcpStream, Option<SocketAddr>)> {
        let read = tokio::time::timeout(PROXY_HEADER_TIMEOUT, read_proxy_header(&mut stream));
        let (refusal, why) = tokio::select! {
            read = read => match read {
                Ok(Ok(client)) => return Some((stream, client)),
                Ok(Err(err)) => (Refusal::BadProxyHeader, err.to_string()),
                Err(_) => (
                    Refusal::BadProxyHeader,
                    format!("no PROXY protocol header within {PROXY_HEADER_TIMEOUT:?}"),
                ),
            },
            () = wait.evicted() => (
                Refusal::Shed,
                "it waited longest for its PROXY protocol header on a full service".to_owned(),
            ),
        };
        self.refuse_with(peer.ip(), refusal, Some(&why));
        None
    }

    /// The TLS handshake of a connection that holds a slot, bounded by the
    /// idle timeout; then the request, served on the relay's plaintext
    /// end. A failed handshake is counted and logged (once a second at
    /// most), never handed to the guest.
    pub(super) async fn handshake(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        tls: &TlsTerminator,
        activity: &Arc<Activity>,
    ) -> Option<Request> {
        let local = stream.local_addr().ok()?;
        let idle = self
            .limits
            .idle_timeout
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        let (tls_stream, info) = match tls.accept(stream, idle).await {
            Ok(accepted) => accepted,
            Err(err) => {
                self.refuse_with(peer.ip(), Refusal::TlsHandshake, Some(&err));
                return None;
            }
        };
        let (plain, reset) = relay(tls_stream, idle).ok()?;
        let incoming = Incoming::Tls(Box::new(TlsConnection {
            plain,
            peer,
            local,
            info,
            reset,
        }));
        Some(Request::new(
            incoming,
            self.limits.read_timeouts(),
            Arc::clone(activity),
        ))
    }
}
