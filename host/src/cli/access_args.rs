//! The flags of a service's gate: access lists, connection rate, PROXY
//! protocol.

use clap::Args;

use crate::net::IpNet;
use crate::server::{AccessRules, ConnectionRate};

/// Who may connect, how fast, and through which load balancers.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct AccessArgs {
    /// Serve only sources in this network (CIDR, e.g. 10.0.0.0/8, or one
    /// address); repeatable. Default: every source.
    #[arg(long, value_name = "NETWORK", help_heading = "Access control")]
    pub(crate) allow_from: Vec<IpNet>,

    /// Never serve sources in this network; repeatable; wins over
    /// --allow-from.
    #[arg(long, value_name = "NETWORK", help_heading = "Access control")]
    pub(crate) deny_from: Vec<IpNet>,

    /// New connections one source address (an IPv6 /64) may open, e.g.
    /// 10/s, 600/m (a token bucket: that many at once, refilled at that
    /// rate); faster ones are closed at once. Default: no limit.
    #[arg(long, value_name = "COUNT/s|m|h", help_heading = "Access control")]
    pub(crate) max_connection_rate: Option<ConnectionRate>,

    /// Expect a PROXY protocol header (v1 or v2) at the start of every TCP
    /// connection, from load balancers in this network only (repeatable):
    /// the handler then sees the client's address, and the access lists,
    /// rate and per-source cap apply to it.
    #[arg(long, value_name = "NETWORK", help_heading = "Access control")]
    pub(crate) proxy_protocol: Vec<IpNet>,
}

/// The flags' ids, for the message that sends them to `[service.access]`.
pub(super) const ACCESS_FLAGS: &[&str] = &[
    "allow_from",
    "deny_from",
    "max_connection_rate",
    "proxy_protocol",
];

impl AccessArgs {
    /// The rules of the one service the flags describe.
    pub(crate) fn rules(&self) -> AccessRules {
        AccessRules {
            allow_from: self.allow_from.clone(),
            deny_from: self.deny_from.clone(),
            max_connection_rate: self.max_connection_rate,
            proxy_from: self.proxy_protocol.clone(),
        }
    }
}
