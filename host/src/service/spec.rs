//! One description of a service, whether it comes from the flags or from a
//! config file (checked by `validate.rs`, the one validator that serve,
//! reload and `check` use).

use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::net::{AllowEntry, ListenOptions, ListenSpec, TlsSpec};
use crate::server::AccessRules;
use crate::shared::StateSpec;
use crate::wasm::{
    ConnectionLimits, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_OUTBOUND, DatagramBudget,
    OutboundPolicy, Settings,
};

/// Requests one service may serve at once (`--max-connections`,
/// `limits.max_connections`).
pub(crate) const MAX_CONNECTIONS: RangeInclusive<u32> = 1..=100_000;
/// Linear memory of one instance, in MiB (`--max-memory`,
/// `limits.max_memory_mib`).
pub(crate) const MAX_MEMORY_MIB: RangeInclusive<u32> = 1..=4096;
/// Connections one source may have by default: an eighth of the default
/// `max_connections`, so one source cannot fill a server.
pub(crate) const DEFAULT_PER_SOURCE: u32 = 128;
/// The largest datagram, in bytes (`--max-datagram`).
pub(crate) const MAX_DATAGRAM: RangeInclusive<usize> = 1..=65_536;
/// The shortest CPU budget: below the engine's epoch tick it cannot be
/// enforced, and any request would fail.
pub(crate) const MIN_CPU: Duration = Duration::from_millis(10);

/// Where a service was described: names the place to fix in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The command line.
    Flags,
    /// A configuration file.
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flags => f.write_str("command line"),
            Origin::File(path) => write!(f, "config {path:?}"),
        }
    }
}

/// One service: a handler, where it listens, and what each request may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceSpec {
    /// The service's name, in log lines, metrics and `listening` lines.
    pub(crate) name: String,
    /// The handler component.
    pub(crate) handler: PathBuf,
    /// Where it listens.
    pub(crate) listen: Vec<ListenSpec>,
    /// Socket settings of its listeners.
    pub(crate) socket: ListenOptions,
    /// Requests served at once.
    pub(crate) max_connections: u32,
    /// Stream connections one source address may have at once.
    pub(crate) max_connections_per_source: u32,
    /// What each request may use.
    pub(crate) limits: ConnectionLimits,
    /// Settings the guest reads (`config.get`).
    pub(crate) settings: Settings,
    /// Its buckets and topics: backend, sharing, limits.
    pub(crate) state: StateSpec,
    /// Where its guests may connect (`--allow-connect`); empty: nowhere.
    pub(crate) allow_connect: Vec<AllowEntry>,
    /// Sockets one request may create (`--max-outbound`).
    pub(crate) max_outbound: u32,
    /// UDP datagrams and bytes one request may send
    /// (`--max-outbound-datagrams`, `--max-outbound-datagram-bytes`).
    pub(crate) outbound_datagrams: DatagramBudget,
    /// How long one outbound TCP connect may take (`--connect-timeout`).
    pub(crate) connect_timeout: Duration,
    /// Who may connect, how fast, through which load balancers.
    pub(crate) access: AccessRules,
    /// TLS for its TCP listeners.
    pub(crate) tls: Option<TlsSpec>,
    /// Whether to reload the handler when its file changes.
    pub(crate) watch: bool,
    /// Whether datagrams are served by reused, warm instances.
    pub(crate) reuse_datagram_instances: bool,
}

impl ServiceSpec {
    /// Where its guests may connect, host names resolved now and pinned
    /// (blocking on DNS: call off the runtime).
    pub(crate) fn outbound_policy(&self) -> Result<OutboundPolicy, String> {
        let mut rules = Vec::new();
        for entry in &self.allow_connect {
            rules.extend(entry.resolve()?);
        }
        Ok(OutboundPolicy {
            rules,
            max_per_request: self.max_outbound,
            connect_timeout: self.connect_timeout,
            datagrams: self.outbound_datagrams,
        })
    }

    /// A service named after its handler file, with every default: what
    /// `--handler PATH` alone describes.
    pub(crate) fn for_handler(handler: PathBuf) -> Self {
        let name = handler
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| handler.display().to_string());
        Self {
            name,
            handler,
            listen: Vec::new(),
            socket: ListenOptions::default(),
            max_connections: 1024,
            max_connections_per_source: DEFAULT_PER_SOURCE,
            limits: ConnectionLimits::default(),
            settings: Settings::new(),
            state: StateSpec::default(),
            allow_connect: Vec::new(),
            max_outbound: DEFAULT_MAX_OUTBOUND,
            outbound_datagrams: DatagramBudget::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            access: AccessRules::default(),
            tls: None,
            watch: false,
            reuse_datagram_instances: false,
        }
    }
}
