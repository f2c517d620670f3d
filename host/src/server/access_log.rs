//! The access log: one line per request when it ends (inetd's
//! `log_on_success`), at INFO under the target `wasmserve::access`, inside
//! the request's span (`conn{id peer transport handler version}`), so it
//! names the peer, the transport and the handler version; the line adds
//! the duration, the bytes in and out, and the outcome.
//!
//! ```text
//! INFO conn{id=7 peer=127.0.0.1:50712 transport=tcp handler=echo.wasm version=3f2a…}: served outcome="ok" duration_ms=12.4 bytes_in=6 bytes_out=6
//! ```
//!
//! `--access-log off` turns it off, `--access-log PATH` writes it to a
//! file of its own (see `app/logging.rs`).

use std::time::Duration;

use crate::wasm::{Activity, FailureCause};

/// The log target of access lines.
pub(crate) const ACCESS_TARGET: &str = "wasmserve::access";

/// How a request ended, as the access log tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The handler returned.
    Ok,
    /// The handler failed (trap, a limit, ...).
    Failed(FailureCause),
    /// Cut by a shutdown whose drain timed out.
    Cut,
    /// Closed to make room on a full server.
    Evicted,
    /// Its TLS handshake failed or timed out: no handler ran.
    TlsHandshake,
    /// The client closed or reset the connection, and the handler then
    /// returned an error: not a handler failure.
    ClientClosed,
    /// The client reset the connection and the handler had not returned
    /// within `--hangup-grace`: ended by the host.
    HungUp,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed(cause) => cause.as_str(),
            Self::Cut => "cut",
            Self::Evicted => "evicted",
            Self::TlsHandshake => "tls_handshake",
            Self::ClientClosed => "client_closed",
            Self::HungUp => "hung_up",
        }
    }
}

/// Logs the access line of a request that ended `outcome` after `took`.
pub(super) fn served(outcome: Outcome, took: Duration, activity: &Activity) {
    let (bytes_in, bytes_out) = activity.bytes();
    tracing::info!(
        target: ACCESS_TARGET,
        outcome = outcome.as_str(),
        duration_ms = took.as_micros() as f64 / 1000.0,
        bytes_in,
        bytes_out,
        "served"
    );
}
