//! Runs listeners and requests until shutdown, then drains.
//!
//! `main` and the integration tests drive [`serve`] the same way: bind the
//! listeners, then hand them over with the handler and a [`Shutdown`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::handler::Handler;
use crate::listener::{Listener, connection_permits};
use crate::request::Request;
use crate::shutdown::Shutdown;

/// How the server runs, beyond what it listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// Requests served at once, over all listeners; further clients wait in
    /// the listen backlog. Must not exceed the engine's instance pool.
    pub max_connections: u32,
    /// How long in-flight requests may take to finish after a stop signal.
    pub drain_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// What happened to the requests that were in flight at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainReport {
    /// Requests in flight when the server stopped accepting.
    pub in_flight: usize,
    /// Of those, how many were cut because the drain timed out.
    pub cut: u64,
}

/// State shared by every listener and request task of one server.
#[derive(Debug)]
pub(crate) struct Server {
    /// The handler every request is served with.
    pub(crate) handler: Arc<Handler>,
    /// One permit per request in flight (see [`ServeConfig::max_connections`]).
    pub(crate) permits: Arc<Semaphore>,
    /// Stop-accepting and cut signals.
    pub(crate) shutdown: Shutdown,
    /// Every request task, so shutdown can wait for them.
    pub(crate) tasks: TaskTracker,
    /// The id the next connection gets in log lines.
    next_id: AtomicU64,
    /// Requests ended by [`Shutdown::cut`].
    cut: AtomicU64,
}

impl Server {
    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Serves one request to the end, or until shutdown cuts it. Whatever the
    /// guest does, only this request is affected.
    pub(crate) async fn serve_request(&self, request: Request) {
        let started = Instant::now();
        tracing::debug!("connection opened");
        tokio::select! {
            result = self.handler.handle(request) => match result {
                Ok(()) => tracing::debug!(elapsed = ?started.elapsed(), "connection closed"),
                Err(err) => tracing::error!(cause = %err, "connection ended by handler failure"),
            },
            _ = self.shutdown.cut_requested() => {
                self.cut.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(elapsed = ?started.elapsed(), "connection cut by shutdown");
            }
        }
    }
}

/// Serves `listeners` with `handler` until `shutdown` asks to stop accepting,
/// then waits up to [`ServeConfig::drain_timeout`] for in-flight requests
/// and cuts the rest.
pub async fn serve(
    listeners: Vec<Listener>,
    handler: Arc<Handler>,
    config: ServeConfig,
    shutdown: Shutdown,
) -> DrainReport {
    let server = Arc::new(Server {
        handler,
        permits: connection_permits(config.max_connections),
        shutdown: shutdown.clone(),
        tasks: TaskTracker::new(),
        next_id: AtomicU64::new(1),
        cut: AtomicU64::new(0),
    });

    let accept_loops: Vec<_> = listeners
        .into_iter()
        .map(|listener| tokio::spawn(listener.run(Arc::clone(&server))))
        .collect();
    shutdown.accepting_stopped().await;
    for accept_loop in accept_loops {
        // The loops return as soon as accepting stops; a panic in one would
        // already have been reported by tokio.
        let _ = accept_loop.await;
    }

    server.tasks.close();
    let in_flight = server.tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, timeout = ?config.drain_timeout, "draining connections");
    }
    if tokio::time::timeout(config.drain_timeout, server.tasks.wait())
        .await
        .is_err()
    {
        shutdown.cut();
        server.tasks.wait().await;
    }
    DrainReport {
        in_flight,
        cut: server.cut.load(Ordering::Relaxed),
    }
}
