//! The flags of a service's outbound connections and datagrams
//! (`--allow-connect` and its limits).

use std::time::Duration;

use clap::Args;

use super::parse_duration;
use crate::net::AllowEntry;
use crate::wasm::{DEFAULT_MAX_OUTBOUND, DatagramBudget};

/// Where a service's handlers may connect, and how much.
#[derive(Debug, Args, Clone)]
pub(crate) struct OutboundArgs {
    /// Let the handler connect to HOST:PORT (TCP, and send UDP there):
    /// an address, a network (10.0.0.0/8:5432), a port range
    /// (127.0.0.1:8000-8100) or a host name, resolved once at start.
    /// Repeatable; without it a handler can connect nowhere.
    #[arg(long, value_name = "HOST:PORT", help_heading = "Outbound connections")]
    pub(crate) allow_connect: Vec<AllowEntry>,

    /// Sockets (TCP or UDP) one request may create, and so connections it
    /// may open to allowed addresses; without --allow-connect it creates
    /// none.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_OUTBOUND, help_heading = "Outbound connections")]
    pub(crate) max_outbound: u32,

    /// UDP datagrams one request may send to allowed addresses; past it a
    /// send fails with access-denied.
    #[arg(long, value_name = "N", default_value_t = DatagramBudget::default().datagrams, help_heading = "Outbound connections")]
    pub(crate) max_outbound_datagrams: u32,

    /// Bytes of UDP payload one request may send to allowed addresses.
    #[arg(long, value_name = "BYTES", default_value_t = DatagramBudget::default().bytes, help_heading = "Outbound connections")]
    pub(crate) max_outbound_datagram_bytes: u64,

    /// How long one outbound TCP connect may take before the handler's
    /// connect fails with a timeout, e.g. 3s.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration, help_heading = "Outbound connections")]
    pub(crate) connect_timeout: Duration,
}

impl OutboundArgs {
    /// The datagram budget the two datagram flags give.
    pub(crate) fn datagram_budget(&self) -> DatagramBudget {
        DatagramBudget {
            datagrams: self.max_outbound_datagrams,
            bytes: self.max_outbound_datagram_bytes,
        }
    }
}
