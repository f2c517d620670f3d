//! The stop signal passed down to every listener and connection task.
//!
//! Shutting down has two steps, as in mini-redis and `wasmtime serve`:
//! first stop accepting and let in-flight requests finish (drain), then, if
//! the drain takes too long or a second signal arrives, cut what is left.

use tokio_util::sync::CancellationToken;

/// A cloneable handle to the process's shutdown state.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled when listeners must stop accepting (the drain begins).
    stop_accepting: CancellationToken,
    /// Cancelled when in-flight requests must end now.
    cut: CancellationToken,
}

impl Shutdown {
    /// A shutdown state with nothing requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks listeners to stop accepting; in-flight requests go on.
    pub fn stop_accepting(&self) {
        self.stop_accepting.cancel();
    }

    /// Asks every in-flight request to end now (and stops accepting too).
    pub fn cut(&self) {
        self.stop_accepting.cancel();
        self.cut.cancel();
    }

    /// Whether [`Shutdown::stop_accepting`] (or [`Shutdown::cut`]) was called.
    pub fn is_stopping(&self) -> bool {
        self.stop_accepting.is_cancelled()
    }

    /// Resolves once listeners must stop accepting.
    pub async fn accepting_stopped(&self) {
        self.stop_accepting.cancelled().await
    }

    /// Resolves once in-flight requests must end.
    pub async fn cut_requested(&self) {
        self.cut.cancelled().await
    }
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(cause = %err, "cannot watch SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
