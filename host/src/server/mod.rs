//! The server: admission (see `admission.rs`: a place in the service's
//! waiting room before each accept, then a slot, given first to the
//! sources holding fewest — `slots.rs`),
//! the accept and receive loops, a task per request, and draining at stop.
//!
//! [`start`] serves a service's listeners with its handler until its
//! [`Shutdown`] asks to stop accepting; [`RunningService`] hands the
//! listeners back (a reload keeps them) or waits for the drain.

mod accept;
mod access_log;
mod admission;
mod gate;
mod header_waits;
mod prologue;
mod report;
mod request_task;
mod slots;
mod sources;
mod stop_wait;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

pub(crate) use accept::waiting_room;
pub(crate) use access_log::ACCESS_TARGET;
use gate::Gate;
pub(crate) use gate::{AccessRules, ConnectionRate};
use header_waits::HeaderWaits;
pub(crate) use report::DrainReport;
use report::FailureCounts;
use slots::Slots;
use sources::Sources;

use crate::metrics::ServiceMetrics;
use crate::net::{ListenOptions, Listener, TlsTerminator};
use crate::shutdown::Shutdown;
use crate::wasm::{ConnectionLimits, HandlerSlot, RequestObserver};

/// How a service runs, beyond what it listens on.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    /// Requests served at once, over all listeners; further clients wait in
    /// the listen backlog. Must not exceed the engine's instance pool.
    pub(crate) max_connections: u32,
    /// Serve this many requests (connections or datagrams), let them
    /// finish, then stop, like socketserver's `handle_request()`; `None`
    /// serves until a stop signal.
    pub(crate) max_requests: Option<u64>,
    /// How long in-flight requests may take to finish after a stop signal.
    pub(crate) drain_timeout: Duration,
    /// Socket settings for every listener.
    pub(crate) listen: ListenOptions,
    /// What each request may use.
    pub(crate) limits: ConnectionLimits,
    /// Serve datagrams with warm instances kept from one datagram to the
    /// next (`--reuse-datagram-instances`) instead of a fresh one each.
    pub(crate) reuse_datagram_instances: bool,
    /// The service's metrics.
    pub(crate) metrics: Arc<ServiceMetrics>,
    /// Stream connections one source address may have, serving or waiting.
    pub(crate) max_per_source: u32,
    /// Which sources may connect, how fast, and through which proxies.
    pub(crate) access: AccessRules,
    /// TLS for its TCP listeners, if configured.
    pub(crate) tls: Option<Arc<TlsTerminator>>,
}

/// State shared by every listener and request task of one server.
#[derive(Debug)]
struct Server {
    /// The handler new requests are served with (replaced on reload).
    handler: Arc<HandlerSlot>,
    /// Socket settings, read by the listeners' loops.
    listen_options: ListenOptions,
    /// What each request may use.
    limits: ConnectionLimits,
    /// Whether datagrams reuse warm instances.
    reuse_datagram_instances: bool,
    /// Requests that ended badly, per cause.
    failures: FailureCounts,
    /// The service's metrics.
    metrics: Arc<ServiceMetrics>,
    /// The same metrics, as the wasm layer sees them.
    observer: Arc<dyn RequestObserver>,
    /// One slot per request in flight (see [`ServeConfig::max_connections`]).
    slots: Arc<Slots>,
    /// One permit per request accepted and waiting for a slot (see
    /// [`waiting_room`]).
    waiting_room: Arc<Semaphore>,
    /// Connections still reading their PROXY header (each holding a place
    /// in the waiting room), oldest first: the first closed when it is full.
    header_waits: Arc<HeaderWaits>,
    /// With `--max-requests`, one permit per request still to be served;
    /// a permit is used up (forgotten) by each request admitted.
    budget: Option<(Arc<Semaphore>, u64)>,
    /// Stop-accepting, drain and cut signals.
    shutdown: Shutdown,
    /// Every request task, so shutdown can wait for them.
    tasks: TaskTracker,
    /// Requests admitted so far; the next one's id in log lines is this + 1.
    served: AtomicU64,
    /// Requests ended by [`Shutdown::cut`].
    cut: AtomicU64,
    /// Stream connections by source address (the per-source cap, and the
    /// full-server rule).
    sources: Arc<Sources>,
    /// The access lists, rates and trusted proxies.
    gate: Gate,
    /// TLS for TCP connections, if configured.
    tls: Option<Arc<TlsTerminator>>,
    /// When the server started, and the second (since then) of the last
    /// logged refusal: refusals are logged once a second at most.
    started: Instant,
    refusal_logged: AtomicU64,
}

/// A service that is serving: its accept loops and its drain task.
#[derive(Debug)]
pub(crate) struct RunningService {
    /// One task per listener; each hands its listener back when it stops.
    accept_loops: Vec<tokio::task::JoinHandle<Listener>>,
    /// Resolves once accepting stopped and every request finished.
    report: tokio::task::JoinHandle<DrainReport>,
    /// This service's own stop signals.
    shutdown: Shutdown,
}

impl RunningService {
    /// Stops accepting and returns the listening sockets, still bound (the
    /// kernel keeps queueing clients meanwhile), in the order [`start`] was
    /// given them, with the task that reports once the requests in flight
    /// have finished. A loop that panicked lost its listener: `None`.
    pub(crate) async fn retire(
        self,
    ) -> (Vec<Option<Listener>>, tokio::task::JoinHandle<DrainReport>) {
        self.shutdown.stop_accepting();
        let mut listeners = Vec::with_capacity(self.accept_loops.len());
        for accept_loop in self.accept_loops {
            listeners.push(accept_loop.await.ok());
        }
        (listeners, self.report)
    }

    /// Waits until the service has stopped accepting and drained. Its
    /// listening sockets are closed as soon as it stops accepting.
    pub(crate) async fn finish(self) -> DrainReport {
        for accept_loop in self.accept_loops {
            drop(accept_loop.await);
        }
        self.report.await.unwrap_or_default()
    }
}

/// Starts serving `listeners` with `handler` until `shutdown` asks to stop
/// accepting (or `--max-requests` were served); then in-flight requests
/// get, after a stop signal, at most [`ServeConfig::drain_timeout`] to
/// finish before they are cut.
pub(crate) fn start(
    listeners: Vec<Listener>,
    handler: Arc<HandlerSlot>,
    config: ServeConfig,
    shutdown: Shutdown,
) -> RunningService {
    let max_connections = usize::try_from(config.max_connections)
        .unwrap_or(usize::MAX)
        .clamp(1, Semaphore::MAX_PERMITS);
    let budget = config.max_requests.map(|max| {
        let permits = usize::try_from(max)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        (Arc::new(Semaphore::new(permits)), max)
    });
    let observer: Arc<dyn RequestObserver> = config.metrics.clone();
    let server = Arc::new(Server {
        handler,
        listen_options: config.listen.clone(),
        limits: config.limits,
        reuse_datagram_instances: config.reuse_datagram_instances,
        failures: FailureCounts::default(),
        metrics: Arc::clone(&config.metrics),
        observer,
        slots: Slots::new(max_connections),
        waiting_room: Arc::new(Semaphore::new(waiting_room(config.max_connections))),
        budget,
        shutdown: shutdown.clone(),
        tasks: TaskTracker::new(),
        served: AtomicU64::new(0),
        cut: AtomicU64::new(0),
        header_waits: Arc::default(),
        sources: Sources::new(usize::try_from(config.max_per_source).unwrap_or(usize::MAX)),
        gate: Gate::new(config.access.clone()),
        tls: config.tls.clone(),
        started: Instant::now(),
        refusal_logged: AtomicU64::new(u64::MAX),
    });
    tokio::spawn(sweep_under_pressure(Arc::clone(&server)));
    let loops = TaskTracker::new();
    let accept_loops = listeners
        .into_iter()
        .map(|listener| loops.spawn(accept::run(listener, Arc::clone(&server))))
        .collect();
    loops.close();
    let report = tokio::spawn(drain(server, loops, config.drain_timeout));
    RunningService {
        accept_loops,
        report,
        shutdown,
    }
}

/// How often the pressure sweep looks at a service.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The first-byte timeout under pressure: a tenth of
/// `--first-byte-timeout`, at least [`MIN_PRESSED_FIRST_BYTE`].
fn pressed_first_byte(first_byte: Duration) -> Duration {
    (first_byte / 10).max(MIN_PRESSED_FIRST_BYTE)
}

/// The shortest first-byte timeout pressure tightens to.
const MIN_PRESSED_FIRST_BYTE: Duration = Duration::from_secs(1);

/// While requests wait for a slot, the first-byte timeout tightens: once a
/// second, as many silent connections as there are requests waiting — in
/// service, never sent a byte, idle for a tenth of `--first-byte-timeout`
/// (at least 1 s) — are evicted, the busiest sources' first. Newcomers
/// evict for themselves as they arrive too (the full-server rule); this
/// frees slots for those that arrived before a slot could be made.
async fn sweep_under_pressure(server: Arc<Server>) {
    let Some(first_byte) = server.limits.first_byte_timeout else {
        return;
    };
    let silent_for = pressed_first_byte(first_byte);
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = server.shutdown.accepting_stopped() => return,
        }
        let waiting = server.slots.waiting();
        if waiting > 0 {
            let evicted = server.sources.evict_silent(waiting, silent_for);
            if evicted > 0 {
                tracing::debug!(evicted, waiting, "pressure: silent connections evicted");
            }
        }
    }
}

async fn drain(server: Arc<Server>, loops: TaskTracker, drain_timeout: Duration) -> DrainReport {
    let shutdown = &server.shutdown;
    shutdown.accepting_stopped().await;
    // No request is admitted once every accept loop has returned.
    loops.wait().await;

    server.tasks.close();
    let in_flight = server.tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "waiting for in-flight requests");
    }
    let drain_expired = async {
        shutdown.drain_begun().await;
        tokio::time::sleep(drain_timeout).await;
    };
    tokio::select! {
        _ = server.tasks.wait() => {}
        _ = drain_expired => {
            tracing::warn!(timeout = ?drain_timeout, "drain timeout passed; cutting in-flight requests");
            shutdown.cut();
            server.tasks.wait().await;
        }
        _ = shutdown.cut_requested() => server.tasks.wait().await,
    }
    DrainReport {
        served: server.served.load(Ordering::Relaxed),
        in_flight,
        cut: server.cut.load(Ordering::Relaxed),
        failures: server.failures.snapshot(),
    }
}
