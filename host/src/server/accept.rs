//! The accept and receive loops: one per listener. A service's listeners
//! share its waiting room ([`waiting_room`] requests taken that wait for a
//! slot); when it is full, the source with the most requests waiting gives
//! one up before the next is taken (see `admission.rs`), so a newcomer in
//! the kernel's backlog is reached within moments however many wait. A
//! listener waiting for its next client holds no slot, so no listener can
//! starve another.

use std::sync::Arc;
use std::time::Duration;

use super::Server;
use crate::net::Listener;

/// Requests a service may have taken that wait for a slot — connections
/// accepted (a descriptor each, no instance) or datagrams received (up to
/// 64 KiB each) — for `max_connections` slots: as many as there are slots,
/// at least 64 and at most 4,096, so that the process's descriptors cover
/// them (`app::fit_os_limits` counts them) and datagrams held stay a few
/// hundred MiB at most.
pub(crate) fn waiting_room(max_connections: u32) -> usize {
    usize::try_from(max_connections)
        .unwrap_or(usize::MAX)
        .clamp(64, 4096)
}

/// Accepts connections or receives datagrams, serving each in its own task,
/// until the server stops accepting; then hands the (still bound) listener
/// back, so a reconfigured service can keep it.
pub(super) async fn run(listener: Listener, server: Arc<Server>) -> Listener {
    let options = server.listen_options.clone();
    let mut backoff = Backoff::default();
    let mut datagram_buf = Vec::new();
    loop {
        let Some(admission) = server.admit().await else {
            return listener;
        };
        let received = tokio::select! {
            biased;
            received = listener.next_incoming(&options, &mut datagram_buf) => Some(received),
            _ = server.shutdown.accepting_stopped() => None,
        };
        let Some(received) = received else {
            return listener;
        };
        match received {
            Ok(Some(incoming)) => {
                backoff.reset();
                server.spawn_request(incoming, admission);
            }
            // A datagram that was dropped (too large): nothing to serve.
            Ok(None) => {}
            Err(err) => {
                // Out of file descriptors, a connection reset before
                // accept, ...: keep the listener and try again.
                let wait = backoff.next();
                tracing::error!(
                    cause = %err,
                    retry_in = ?wait,
                    listener = %listener,
                    "accept failed"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Doubling wait between failed accepts: 5 ms up to 1 s.
#[derive(Debug, Default)]
struct Backoff {
    /// The wait before the next retry, or `None` after a success.
    current: Option<Duration>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn next(&mut self) -> Duration {
        let wait = self
            .current
            .map_or(Self::FIRST, |wait| (wait * 2).min(Self::MAX));
        self.current = Some(wait);
        wait
    }

    fn reset(&mut self) {
        self.current = None;
    }
}
