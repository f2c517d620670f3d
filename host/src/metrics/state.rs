//! The metrics of shared state (key-value operations and bytes, messages
//! published, delivered and lost) and of outbound connections.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{ServiceLabels, ServiceMetrics};
use std::sync::Arc;

use crate::shared::{KvOp, StateObserver};
use crate::wasm::{Direction, OutboundResult, UpstreamTally};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KvLabels {
    service: String,
    op: String,
    result: String,
}

const OPS: [KvOp; 4] = [KvOp::Open, KvOp::Read, KvOp::Write, KvOp::Atomic];

/// The families, registered once.
#[derive(Debug, Default)]
pub(super) struct StateFamilies {
    kv_operations: Family<KvLabels, Counter>,
    kv_bytes: Family<ServiceLabels, Gauge>,
    published: Family<ServiceLabels, Counter>,
    delivered: Family<ServiceLabels, Counter>,
    lost: Family<ServiceLabels, Counter>,
    subscriptions_refused: Family<ServiceLabels, Counter>,
    outbound: Family<ResultLabels, Counter>,
    outbound_datagrams: Family<ResultLabels, Counter>,
    upstream_bytes: Family<UpstreamLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    service: String,
    upstream: String,
    direction: String,
}

/// One upstream's two byte counters.
struct UpstreamCounters([Counter; 2]);

impl UpstreamTally for UpstreamCounters {
    fn bytes(&self, direction: Direction, bytes: u64) {
        self.0[direction as usize].inc_by(bytes);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    service: String,
    result: String,
}

/// One service's handles: every series made at start, so an operation
/// costs one atomic add.
#[derive(Debug)]
pub(super) struct StateHandles {
    /// By [`OPS`] index, then ok (0) or error (1).
    kv_operations: [[Counter; 2]; 4],
    kv_bytes: Gauge,
    published: Counter,
    delivered: Counter,
    lost: Counter,
    subscriptions_refused: Counter,
    /// Outbound TCP connects, by [`OutboundResult::index`].
    outbound: [Counter; 3],
    /// Outbound UDP datagrams: sent (0), refused (1).
    outbound_datagrams: [Counter; 2],
}

impl StateHandles {
    pub(super) fn outbound(&self, result: OutboundResult) {
        self.outbound[result.index()].inc();
    }

    pub(super) fn outbound_datagrams(&self, sent: u64, refused: u64) {
        self.outbound_datagrams[0].inc_by(sent);
        self.outbound_datagrams[1].inc_by(refused);
    }
}

impl StateFamilies {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "kv_operations",
            "Key-value operations, per kind (open, read, write, atomic) and result (ok, error: a limit, a bad bucket, the backend down)",
            self.kv_operations.clone(),
        );
        registry.register(
            "kv_bytes",
            "Bytes the service's entries count for in an embedded backend (memory, file), against --kv-max-bytes: each entry its bucket's name, key, value and 128 bytes of overhead; each bucket 1 KiB in memory",
            self.kv_bytes.clone(),
        );
        registry.register(
            "channel_messages_published",
            "Messages the service's handlers published",
            self.published.clone(),
        );
        registry.register(
            "channel_messages_delivered",
            "Messages queued for the service's subscribers",
            self.delivered.clone(),
        );
        registry.register(
            "outbound_connections",
            "Outbound TCP connections handlers asked for, per result: allowed (in --allow-connect, under --max-outbound), refused, or timeout (allowed, not connected within --connect-timeout)",
            self.outbound.clone(),
        );
        registry.register(
            "outbound_datagrams",
            "UDP datagrams handlers sent to allowed addresses (sent), or tried to send past --max-outbound-datagrams / --max-outbound-datagram-bytes (refused)",
            self.outbound_datagrams.clone(),
        );
        registry.register(
            "upstream_bytes",
            "Bytes handlers moved on outbound connections, per upstream (the --allow-connect entry that let it through) and direction (in: from the upstream)",
            self.upstream_bytes.clone(),
        );
        registry.register(
            "channel_messages_lost",
            "Messages the service's subscribers lost because their queue was full (--channel-queue)",
            self.lost.clone(),
        );
        registry.register(
            "channel_subscriptions_refused",
            "Subscribes refused because the request or the service held as many subscriptions as it may (--channel-subscriptions-per-request, --channel-subscriptions)",
            self.subscriptions_refused.clone(),
        );
    }

    /// The byte counters of `service`'s connections to `upstream` (an
    /// allow-list entry: the label's values are bounded by the config).
    pub(super) fn upstream(&self, service: &str, upstream: &str) -> Arc<dyn UpstreamTally> {
        let counter = |direction: &str| {
            self.upstream_bytes
                .get_or_create(&UpstreamLabels {
                    service: service.to_owned(),
                    upstream: upstream.to_owned(),
                    direction: direction.to_owned(),
                })
                .clone()
        };
        Arc::new(UpstreamCounters([counter("in"), counter("out")]))
    }

    pub(super) fn handles(&self, service: &str) -> StateHandles {
        let labels = ServiceLabels {
            service: service.to_owned(),
        };
        let kv = |op: KvOp, result: &str| {
            self.kv_operations
                .get_or_create(&KvLabels {
                    service: service.to_owned(),
                    op: op.as_str().to_owned(),
                    result: result.to_owned(),
                })
                .clone()
        };
        StateHandles {
            kv_operations: OPS.map(|op| [kv(op, "ok"), kv(op, "error")]),
            kv_bytes: self.kv_bytes.get_or_create(&labels).clone(),
            published: self.published.get_or_create(&labels).clone(),
            delivered: self.delivered.get_or_create(&labels).clone(),
            lost: self.lost.get_or_create(&labels).clone(),
            subscriptions_refused: self.subscriptions_refused.get_or_create(&labels).clone(),
            outbound: OutboundResult::ALL.map(|result| {
                self.outbound
                    .get_or_create(&ResultLabels {
                        service: service.to_owned(),
                        result: result.as_str().to_owned(),
                    })
                    .clone()
            }),
            outbound_datagrams: ["sent", "refused"].map(|result| {
                self.outbound_datagrams
                    .get_or_create(&ResultLabels {
                        service: service.to_owned(),
                        result: result.to_owned(),
                    })
                    .clone()
            }),
        }
    }
}

impl StateObserver for ServiceMetrics {
    fn kv_operation(&self, op: KvOp, failed: bool) {
        let index = OPS.iter().position(|known| *known == op).unwrap_or(0);
        self.state.kv_operations[index][usize::from(failed)].inc();
    }

    fn kv_bytes(&self, bytes: u64) {
        self.state
            .kv_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    fn published(&self) {
        self.state.published.inc();
    }

    fn delivered(&self) {
        self.state.delivered.inc();
    }

    fn lost(&self) {
        self.state.lost.inc();
    }

    fn subscription_refused(&self) {
        self.state.subscriptions_refused.inc();
    }
}
