//! wasmserve: serve sockets with sandboxed WebAssembly handlers.
//!
//! The native host owns the listening sockets and the accept loops; every
//! connection (and, for datagram transports, every datagram) is served by a
//! fresh instance of a Wasm component that exports `handle(request)` from the
//! `wasmserve:handler` WIT world (see `wit/handler.wit`).
//!
//! The library's one public item is [`main`], which the `wasmserve` binary
//! calls; everything else is private to the crate, so the compiler reports
//! what nothing uses.
//!
//! # Layout
//!
//! A folder per layer; imports run downwards only (`app` → `service` →
//! `server` → `wasm` → `registry`, `shared` → `net`), with `metrics`,
//! `shutdown` and `error` beside them:
//!
//! - `cli`: clap definitions and the mapping of flags to a service spec.
//! - `app/`: start-up, signals, SIGHUP, `check`.
//! - `service/`: one description of a service (`ServiceSpec`) from flags or
//!   the config file, the one validator, the supervisor that applies a
//!   (re)loaded configuration, handler reloads and `--watch`.
//! - `server/`: admission (room among a listener's pending requests before
//!   each accept; slots in arrival order; the per-source cap and the
//!   full-server rule), the accept and receive loops, a task per request,
//!   draining at stop.
//! - `wasm/`: the engine and its epoch ticker, the WIT bindings, loading a
//!   handler component, instances and their limits, the `request` resource,
//!   guest output, the store state. It reports counts upward through
//!   `RequestObserver` and knows nothing of services or metrics.
//! - `shared/`: what outlives a request and is shared between instances:
//!   key-value buckets and pub/sub channels over the memory, redb-file or
//!   Redis backend, with their limits; reports through `StateObserver`.
//! - `registry/`: handlers from an OCI registry (`oci://`), pulled,
//!   verified and cached by digest; `wasmserve push`.
//! - `net/`: listen addresses and transport names, binding sockets of every
//!   transport (inherited ones too), taking connections and datagrams.
//! - `metrics`: Prometheus metrics and the `/metrics` endpoint (with
//!   `/healthz` and `/readyz`).
//! - `shutdown`: the stop-accepting / drain / cut signal.
//! - `scaffold`: `wasmserve new`.
//! - `error`: load and listen errors, and `one_line`.
#![deny(missing_docs)]

mod app;
mod cli;
mod error;
mod metrics;
mod net;
mod registry;
mod scaffold;
mod server;
mod service;
mod shared;
mod shutdown;
mod wasm;

pub use app::main;
