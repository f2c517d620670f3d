//! wasmserve: serve sockets with sandboxed WebAssembly handlers.
//!
//! The native host owns the listening sockets and the accept loops; every
//! connection (and, for datagram transports, every datagram) is served by a
//! fresh instance of a Wasm component that exports `handle(request)` from the
//! `wasmserve:handler` WIT world (see `wit/handler.wit`).
//!
//! # Layout
//!
//! One module per concern, from the outside in:
//!
//! - [`cli`]: command-line flags (clap) and listen-address parsing.
//! - [`config`]: the configuration file (several services, inetd style).
//! - [`supervisor`]: the services of the process; applies a (re)loaded
//!   configuration without closing sockets that stay wanted.
//! - [`server`]: [`server::serve`] ties listeners, the handler and the shutdown
//!   signal together; `main` and the tests drive it the same way.
//! - [`listener`]: binds sockets of every transport (TCP, UDP, Unix stream,
//!   Unix datagram) and runs their accept/receive loops, with backpressure.
//! - [`inherited`]: sockets passed in by systemd or `--listen-fd`.
//! - [`shutdown`]: the stop-accepting / drain / cut signal passed down to every task.
//! - [`handler`]: loads and checks a handler component once, then serves each
//!   request in its own `Store` and instance.
//! - [`reload`]: hot swap of the handler (SIGHUP, `--watch`).
//! - [`metrics`]: Prometheus metrics and the `/metrics` endpoint.
//! - [`scaffold`]: `wasmserve new`, a handler project in Rust, Python or JS.
//! - [`engine`]: every wasmtime knob (pooling allocator, epochs, stacks) in
//!   one place, and the one epoch ticker thread.
//! - [`limits`]: per-request memory, CPU and lifetime limits.
//! - [`request`]: the host side of the `request` resource a guest reads and writes.
//! - [`state`]: the per-instance store data (resource table, WASI context).
//! - [`guest_output`]: turns a guest's stdout/stderr into log lines.
//! - [`bindings`]: the `bindgen!`-generated types of the WIT world.
//! - [`error`]: the error types library callers can match on.
#![deny(missing_docs)]

pub mod bindings;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod guest_output;
pub mod handler;
pub mod inherited;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod reload;
pub mod request;
pub mod scaffold;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod supervisor;

pub use error::LoadError;
pub use handler::Handler;
