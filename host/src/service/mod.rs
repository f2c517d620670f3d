//! The service layer: one description of a service ([`ServiceSpec`]) built
//! from the flags or from a config file, the one validator, and the
//! [`Supervisor`] that runs the services and applies a new configuration
//! (SIGHUP) without closing sockets that stay wanted.

mod access_table;
mod file;
mod reload;
mod socket_plan;
mod spec;
mod start_up;
mod state_table;
mod supervisor;
mod tls_table;
mod validate;

pub(crate) use file::load as load_config;
pub(crate) use spec::{
    DEFAULT_PER_SOURCE, MAX_CONNECTIONS, MAX_DATAGRAM, MAX_MEMORY_MIB, Origin, ServiceSpec,
};
pub(crate) use supervisor::Supervisor;
pub(crate) use validate::{validate, validate_resolved, validate_with};
