//! The data every per-request `Store` holds.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::books::RequestBooks;
use super::guest_output::{GuestOutput, GuestStream};
use super::guest_text::LogBudget;
use super::heavy_lane::LaneSlot;
use super::limits::MemoryLimiter;
use super::outbound::OutboundPolicy;
use crate::shared::ServiceShare;

/// The most host objects one instance may hold handles to at once: its
/// request, pollables, streams, WASI's own. A guest that creates them
/// without dropping them traps when it reaches this (the default of
/// wasmtime's table is a million, which 1,024 instances could turn into
/// gigabytes of host memory).
pub(crate) const MAX_HANDLES: usize = 4096;

/// What a request's instance reports upward while it runs. The wasm layer
/// counts nothing itself; the server hands it an observer (the service's
/// metrics) and each instance calls it as things happen.
pub(crate) trait RequestObserver: Send + Sync + std::fmt::Debug {
    /// The guest read `bytes` from its client.
    fn bytes_in(&self, bytes: u64);
    /// The guest wrote `bytes` to its client.
    fn bytes_out(&self, bytes: u64);
    /// A fresh instance took `took` to create.
    fn instantiated(&self, took: Duration);
    /// A datagram reply was refused: over the reply budget.
    fn reply_refused(&self);
    /// Held datagram replies the socket did not take when they were sent.
    fn replies_dropped(&self, count: u64);
    /// What became of an outbound TCP connect the guest asked for.
    fn outbound(&self, result: OutboundResult);
    /// UDP datagrams the guest sent to allowed addresses, and refused ones.
    fn outbound_datagrams(&self, sent: u64, refused: u64);
    /// Where to count the bytes of a connection to `upstream` (the
    /// allow-list entry that let it through).
    fn upstream(&self, upstream: &str) -> Arc<dyn UpstreamTally>;
}

/// What became of an outbound TCP connect, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutboundResult {
    /// The allow-list let it through.
    Allowed,
    /// The allow-list (or `--max-outbound`) refused it.
    Refused,
    /// Allowed, but not connected within `--connect-timeout`.
    TimedOut,
}

impl OutboundResult {
    /// Every result, in the order of [`OutboundResult::index`].
    pub(crate) const ALL: [Self; 3] = [Self::Allowed, Self::Refused, Self::TimedOut];

    /// Its position in [`OutboundResult::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Its metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Refused => "refused",
            Self::TimedOut => "timeout",
        }
    }
}

/// Counts the bytes of one outbound connection.
pub(crate) trait UpstreamTally: Send + Sync {
    /// `bytes` moved `direction` (`In`: from the upstream).
    fn bytes(&self, direction: super::books::Direction, bytes: u64);
}

/// The store data of one handler instance, which lives exactly as long as one
/// request (one connection or one datagram).
pub(crate) struct InstanceState {
    /// Every resource the guest holds a handle to: its `request`, its
    /// pollables and streams, and WASI's (stdout, stderr, timers); at most
    /// [`MAX_HANDLES`].
    pub(crate) table: ResourceTable,
    /// The guest's WASI context ([`locked_down_wasi`]), built at the
    /// guest's first WASI call: many requests make none (an echo, a greet),
    /// and an idle connection then holds none of it.
    wasi: Option<WasiCtx>,
    /// Caps the guest's linear memory; remembers a refused growth.
    pub(crate) memory: MemoryLimiter,
    /// This request's CPU time, idle flag and counts, shared with its
    /// socket (read by the epoch callback).
    pub(crate) books: Arc<RequestBooks>,
    /// The operator's settings (`config.get`) and the service's shared
    /// state (buckets, channels).
    pub(crate) env: Arc<HandlerEnv>,
    /// This instance's id as a publisher on channels (0 until it first
    /// publishes or subscribes).
    publisher: crate::shared::PublisherId,
    /// How many lines the guest may still log (stdout and stderr).
    pub(crate) log_budget: Arc<LogBudget>,
    /// The heavy-lane permit of the guest's current slice, if it is heavy.
    pub(crate) lane: LaneSlot,
    /// The request's lingering close, once the guest dropped it (a guest
    /// holds one request at a time, so one at most).
    pub(crate) lingering: Option<super::request::Lingering>,
    /// The upstream the guest handed its request to, relayed to once
    /// `handle` returns (one per request).
    pub(crate) hand_off: Option<super::hand_off::HandOff>,
    /// Whether a refused subscribe was logged (once per request).
    pub(crate) subscription_refusal_logged: bool,
    /// The guest's outbound connects in progress, and their deadlines.
    pub(crate) connects: super::connect_deadline::ConnectDeadlines,
    /// The sockets the guest created (`--max-outbound`).
    pub(crate) socket_account: super::socket_account::SocketAccount,
}

/// Settings given to every instance of a handler (`--set KEY=VALUE`).
pub(crate) type Settings = std::collections::BTreeMap<String, String>;

/// What a service gives every instance of its handler.
#[derive(Debug)]
pub(crate) struct HandlerEnv {
    /// The operator's settings, read by `config.get`.
    pub(crate) settings: Settings,
    /// The service's buckets and topics.
    pub(crate) share: ServiceShare,
    /// Where its guests may connect.
    pub(crate) outbound: Arc<OutboundPolicy>,
}

impl std::fmt::Debug for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceState").finish_non_exhaustive()
    }
}

impl InstanceState {
    /// Fresh state for one request, with the locked-down WASI context and
    /// memory capped at `max_memory_bytes`.
    pub(crate) fn new(
        max_memory_bytes: usize,
        env: Arc<HandlerEnv>,
        observer: Arc<dyn RequestObserver>,
    ) -> Self {
        let log_budget = Arc::new(LogBudget::default());
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        Self {
            table,
            wasi: None,
            memory: MemoryLimiter::new(max_memory_bytes),
            books: Arc::new(RequestBooks::new(observer)),
            env,
            publisher: 0,
            log_budget,
            lingering: None,
            hand_off: None,
            subscription_refusal_logged: false,
            lane: LaneSlot::default(),
            connects: Default::default(),
            socket_account: Default::default(),
        }
    }

    /// Readies the state for the next request served by this instance: the
    /// CPU count, the idle flag and the memory-refusal flag start afresh.
    pub(crate) fn begin_request(&mut self) {
        self.books = Arc::new(RequestBooks::new(Arc::clone(&self.books.observer)));
        self.memory.reset();
    }

    /// This instance's publisher id, drawn at first use.
    pub(crate) fn publisher_id(&mut self) -> crate::shared::PublisherId {
        if self.publisher == 0 {
            self.publisher = crate::shared::next_publisher_id();
        }
        self.publisher
    }
}

/// The guest's WASI context, locked down: no preopened directories, no
/// environment, no arguments, no name lookups, and sockets only as far as
/// the service's allow-list opens them (none by default); stdin is empty
/// and stdout/stderr go to the host log under `log_budget`.
fn locked_down_wasi(
    log_budget: &Arc<LogBudget>,
    outbound: &Arc<OutboundPolicy>,
    observer: &Arc<dyn RequestObserver>,
) -> WasiCtx {
    let mut builder = WasiCtx::builder();
    builder
        .stdout(GuestOutput::new(
            GuestStream::Stdout,
            Arc::clone(log_budget),
        ))
        .stderr(GuestOutput::new(
            GuestStream::Stderr,
            Arc::clone(log_budget),
        ))
        // TCP and UDP go through the policy's check (which refuses all
        // without an allow-list, and logs the refusal); DNS stays off.
        .allow_tcp(true)
        .allow_udp(true)
        .allow_ip_name_lookup(false);
    let check = outbound.check_for_instance(Arc::clone(observer));
    builder.socket_addr_check(move |addr, usage| check(addr, usage));
    builder.build()
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (log_budget, outbound) = (&self.log_budget, &self.env.outbound);
        let observer = &self.books.observer;
        WasiCtxView {
            ctx: self
                .wasi
                .get_or_insert_with(|| locked_down_wasi(log_budget, outbound, observer)),
            table: &mut self.table,
        }
    }
}

/// `config.get`, the same in every contract version.
macro_rules! config_host {
    ($version:path) => {
        impl $version for InstanceState {
            async fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
                Ok(self.env.settings.get(&name).cloned())
            }
        }
    };
}

config_host!(super::bindings::current::ConfigHost);
config_host!(super::bindings::previous::ConfigHost);
