//! The accept and receive loops: one per listener. Each may hold up to
//! [`MAX_PENDING`] requests it took that wait for a slot; past that it stops
//! taking more (the kernel's backlog or receive buffer holds new clients)
//! instead of accepting and dropping. A listener waiting for its next client
//! holds no slot, so no listener can starve another.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::Server;
use crate::net::Listener;

/// Requests one listener may have taken that wait for a slot: connections
/// accepted (a descriptor each) or datagrams received (up to 64 KiB each).
pub(crate) const MAX_PENDING: usize = 64;

/// Accepts connections or receives datagrams, serving each in its own task,
/// until the server stops accepting; then hands the (still bound) listener
/// back, so a reconfigured service can keep it.
pub(super) async fn run(listener: Listener, server: Arc<Server>) -> Listener {
    let options = server.listen_options.clone();
    let mut backoff = Backoff::default();
    let mut datagram_buf = Vec::new();
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    loop {
        let Some(admission) = server.admit(&pending).await else {
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
