//! Prometheus metrics: the registry and each service's handles into it;
//! the small HTTP server (`--metrics [HOST:]PORT`, `endpoint.rs`) serves
//! `/metrics`, and `/healthz` and `/readyz` beside it (`health.rs`).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod endpoint;
mod exposition;
mod health;
mod state;

pub(crate) use endpoint::{bind, serve_metrics};
pub(crate) use health::Health;

use crate::wasm::{FailureCause, RequestObserver};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    service: String,
    transport: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    service: String,
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    service: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    service: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    wasmtime: String,
}

fn seconds_histogram() -> Histogram {
    // 10 µs .. ~84 s.
    Histogram::new(exponential_buckets(0.000_01, 4.0, 12))
}

fn instantiation_histogram() -> Histogram {
    // 2 µs .. ~12 ms in steps of 25%, fine enough to read a median of a few
    // microseconds (the benchmark harness does).
    Histogram::new(exponential_buckets(0.000_002, 1.25, 40))
}

/// Every metric of the process, in one registry.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    accepted: Family<TransportLabels, Counter>,
    active: Family<ServiceLabels, Gauge>,
    waiting: Family<ServiceLabels, Gauge>,
    waited: Family<ServiceLabels, Counter>,
    datagrams: Family<ServiceLabels, Counter>,
    replies_refused: Family<ServiceLabels, Counter>,
    replies_dropped: Family<ServiceLabels, Counter>,
    bytes_in: Family<ServiceLabels, Counter>,
    bytes_out: Family<ServiceLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    instantiation: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    reloads: Family<ReloadLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    state: state::StateFamilies,
    /// Liveness and readiness (`/healthz`, `/readyz`).
    pub(crate) health: Health,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every wasmserve metric, prefixed `wasmserve_`.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("wasmserve");
        let metrics = Self {
            accepted: Family::default(),
            active: Family::default(),
            waiting: Family::default(),
            waited: Family::default(),
            datagrams: Family::default(),
            replies_refused: Family::default(),
            replies_dropped: Family::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(seconds_histogram),
            instantiation: Family::new_with_constructor(instantiation_histogram),
            reloads: Family::default(),
            refused: Family::default(),
            state: state::StateFamilies::default(),
            health: Health::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections_accepted",
            "Connections accepted, per transport (datagrams not included)",
            metrics.accepted.clone(),
        );
        registry.register(
            "connections_active",
            "Requests being served now",
            metrics.active.clone(),
        );
        registry.register(
            "connections_waiting",
            "Requests accepted and waiting for a slot now (--max-connections are in flight); they hold a socket, no instance",
            metrics.waiting.clone(),
        );
        registry.register("connections_waited_at_limit", "Requests that had to wait for a slot because --max-connections requests were in flight (the next free slot goes to the source holding fewest)", metrics.waited.clone());
        registry.register(
            "datagrams_handled",
            "Datagrams served (UDP and Unix datagram)",
            metrics.datagrams.clone(),
        );
        registry.register(
            "datagram_replies_refused",
            "Datagram replies refused: over the reply budget (at most 8 replies and 10x the bytes received, at least 1 KiB)",
            metrics.replies_refused.clone(),
        );
        registry.register(
            "datagram_replies_dropped",
            "Held datagram replies the socket did not take when the worker sent them (a full send buffer)",
            metrics.replies_dropped.clone(),
        );
        registry.register(
            "bytes_in",
            "Bytes handlers read from clients",
            metrics.bytes_in.clone(),
        );
        registry.register(
            "bytes_out",
            "Bytes handlers wrote to clients",
            metrics.bytes_out.clone(),
        );
        registry.register(
            "guest_failures",
            "Requests that ended badly, per cause",
            metrics.failures.clone(),
        );
        registry.register(
            "handler_duration_seconds",
            "Time from the start of a request to its end",
            metrics.duration.clone(),
        );
        registry.register(
            "instantiation_seconds",
            "Time to instantiate the handler for one request",
            metrics.instantiation.clone(),
        );
        registry.register(
            "connections_closed_by_server",
            "Connections the server closed itself, per reason: per_source (the source had --max-connections-per-source already), evicted (a full server made room for a newcomer: the longest-idle connection of the busiest source) or shed (the waiting room was full: the oldest waiting connection of the source with the most waiting)",
            metrics.refused.clone(),
        );
        registry.register(
            "handler_reloads",
            "Handler reloads, per result (ok or failed)",
            metrics.reloads.clone(),
        );
        metrics.state.register(&mut registry);
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                wasmtime: "48".to_owned(),
            })
            .set(1);
        registry.register("build_info", "wasmserve's version", build);
        Self {
            registry,
            ..metrics
        }
    }

    /// The handles of one service's metrics.
    pub(crate) fn service(self: &Arc<Self>, name: &str) -> Arc<ServiceMetrics> {
        let labels = ServiceLabels {
            service: name.to_owned(),
        };
        // Make the per-service series exist from the start, at zero.
        for cause in FailureCause::ALL {
            drop(self.failures.get_or_create(&FailureLabels {
                service: name.to_owned(),
                cause: cause.as_str().to_owned(),
            }));
        }
        Arc::new(ServiceMetrics {
            name: name.to_owned(),
            active: self.active.get_or_create(&labels).clone(),
            waiting: self.waiting.get_or_create(&labels).clone(),
            waited: self.waited.get_or_create(&labels).clone(),
            datagrams: self.datagrams.get_or_create(&labels).clone(),
            replies_refused: self.replies_refused.get_or_create(&labels).clone(),
            replies_dropped: self.replies_dropped.get_or_create(&labels).clone(),
            bytes_in: self.bytes_in.get_or_create(&labels).clone(),
            bytes_out: self.bytes_out.get_or_create(&labels).clone(),
            duration: self.duration.get_or_create(&labels).clone(),
            instantiation: self.instantiation.get_or_create(&labels).clone(),
            state: self.state.handles(name),
            all: Arc::clone(self),
        })
    }

    /// The registry in the Prometheus text format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// One service's metric handles (cheap clones of the registry's series).
#[derive(Debug)]
pub(crate) struct ServiceMetrics {
    name: String,
    /// Requests in flight.
    pub(crate) active: Gauge,
    /// Requests waiting for a slot now.
    pub(crate) waiting: Gauge,
    /// Admissions that had to wait for a free slot.
    pub(crate) waited: Counter,
    /// Datagrams served.
    pub(crate) datagrams: Counter,
    /// Datagram replies refused (reply budget).
    replies_refused: Counter,
    /// Held datagram replies dropped (a full send buffer).
    replies_dropped: Counter,
    /// Bytes read by handlers.
    pub(crate) bytes_in: Counter,
    /// Bytes written by handlers.
    pub(crate) bytes_out: Counter,
    /// Request durations.
    pub(crate) duration: Histogram,
    /// Instantiation times.
    pub(crate) instantiation: Histogram,
    /// Shared state's counters.
    state: state::StateHandles,
    all: Arc<Metrics>,
}

impl ServiceMetrics {
    /// Counts one accepted connection on `transport`.
    pub(crate) fn accepted(&self, transport: &str) {
        self.all
            .accepted
            .get_or_create(&TransportLabels {
                service: self.name.clone(),
                transport: transport.to_owned(),
            })
            .inc();
    }

    /// Counts one failure.
    pub(crate) fn failure(&self, cause: FailureCause) {
        self.all
            .failures
            .get_or_create(&FailureLabels {
                service: self.name.clone(),
                cause: cause.as_str().to_owned(),
            })
            .inc();
    }

    /// Counts one connection closed by the server for `reason`:
    /// `per_source` (refused at once) or `evicted` (full-server rule).
    pub(crate) fn refused(&self, reason: &str) {
        self.all
            .refused
            .get_or_create(&ReasonLabels {
                service: self.name.clone(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts one reload attempt.
    pub(crate) fn reload(&self, ok: bool) {
        self.all
            .reloads
            .get_or_create(&ReloadLabels {
                service: self.name.clone(),
                result: if ok { "ok" } else { "failed" }.to_owned(),
            })
            .inc();
    }
}

impl RequestObserver for ServiceMetrics {
    fn bytes_in(&self, bytes: u64) {
        self.bytes_in.inc_by(bytes);
    }

    fn bytes_out(&self, bytes: u64) {
        self.bytes_out.inc_by(bytes);
    }

    fn instantiated(&self, took: std::time::Duration) {
        self.instantiation.observe(took.as_secs_f64());
    }

    fn reply_refused(&self) {
        self.replies_refused.inc();
    }

    fn replies_dropped(&self, count: u64) {
        self.replies_dropped.inc_by(count);
    }

    fn outbound(&self, result: crate::wasm::OutboundResult) {
        self.state.outbound(result);
    }

    fn outbound_datagrams(&self, sent: u64, refused: u64) {
        self.state.outbound_datagrams(sent, refused);
    }

    fn upstream(&self, upstream: &str) -> Arc<dyn crate::wasm::UpstreamTally> {
        self.all.state.upstream(&self.name, upstream)
    }
}
