//! Rust types generated from the host/guest contract, one `bindgen!` per
//! incompatible version the host serves: `wit/handler.wit` (0.2.4, the
//! current one) and the pinned `wit/0.1.1/handler.wit`, so components built
//! against either run unchanged. Components built against 0.2.0 to 0.2.3
//! (`wit/0.2.0/` … `wit/0.2.3/`, released before later versions added to
//! them) link to the 0.2.4 definitions: wasmtime's linker resolves an
//! import of `…@0.2.0` to `…@0.2.4`, the same functions and more (released
//! versions never change; `wit/README.md`).
//!
//! Imports are async (a guest blocked in `read` suspends its fiber and
//! holds no thread) and trappable (a bad resource handle traps the guest
//! instead of panicking the host); the `handle` export is async too. Both
//! versions' `request` resource is backed by the same `request::Request`,
//! and 0.2's `wasi:io` and `wasi:clocks` types are wasmtime-wasi's own, so a
//! guest passes the request's pollables and WASI's to one `poll` call.

// Generated code; the WIT files document every item.
mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasmserve:handler/handler",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasmserve:handler/types.request": crate::wasm::request::Request,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:keyvalue/store.bucket": crate::shared::keyvalue::Bucket,
            "wasi:keyvalue/atomics.cas": crate::wasm::keyvalue_host::CasTicket,
            "wasmserve:handler/channels.subscription": crate::wasm::channels_host::GuestSubscription,
        },
    });
}

mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/0.1.1",
        world: "wasmserve:handler/handler",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasmserve:handler/types.request": crate::wasm::request::Request,
        },
    });
}

/// The current contract, `wasmserve:handler@0.2.4` (and 0.2.0 to 0.2.3, subsets).
pub(crate) mod current {
    pub(crate) use super::v0_2::Handler as HandlerWorld;
    pub(crate) use super::v0_2::HandlerPre as HandlerWorldPre;
    /// `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch).
    pub(crate) use super::v0_2::wasi::keyvalue;
    /// `wasmserve:handler/channels`.
    pub(crate) use super::v0_2::wasmserve::handler::channels;
    pub(crate) use super::v0_2::wasmserve::handler::config::{
        Host as ConfigHost, add_to_linker as add_config_to_linker,
    };
    /// `wasmserve:handler/keyspace` (expiry, scans, multi-key steps).
    pub(crate) use super::v0_2::wasmserve::handler::keyspace;
    pub(crate) use super::v0_2::wasmserve::handler::types::{
        Error as RequestError, HandOffError, Host as TypesHost, HostRequest, TlsInfo, Transport,
        add_to_linker,
    };

    /// The worlds handlers may implement, for messages.
    pub(crate) const WORLD_NAME: &str =
        "wasmserve:handler/handler@0.2.4 (or @0.2.3, @0.2.2, @0.2.1, @0.2.0, @0.1.x)";
    /// The interface the `request` resource belongs to.
    pub(crate) const TYPES_INTERFACE: &str = "wasmserve:handler/types@0.2.4";
    /// The newest contract version this host serves.
    pub(crate) const VERSION: &str = "0.2.4";
}

/// The previous contract, `wasmserve:handler@0.1.1`, still served.
pub(crate) mod previous {
    pub(crate) use super::v0_1::Handler as HandlerWorld;
    pub(crate) use super::v0_1::HandlerPre as HandlerWorldPre;
    pub(crate) use super::v0_1::wasmserve::handler::config::{
        Host as ConfigHost, add_to_linker as add_config_to_linker,
    };
    pub(crate) use super::v0_1::wasmserve::handler::types::{
        Error as RequestError, Host as TypesHost, HostRequest, Transport, add_to_linker,
    };

    /// The interface the `request` resource belongs to.
    pub(crate) const TYPES_INTERFACE: &str = "wasmserve:handler/types@0.1.1";
    /// What this version's number starts with (0.1.0 and 0.1.1 alike).
    pub(crate) const VERSION_PREFIX: &str = "0.1.";
}
