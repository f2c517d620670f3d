//! Rust types generated from `wit/handler.wit`, the host/guest contract.
//!
//! One `bindgen!` for the whole package. Imports are async (a guest blocked in
//! `read` suspends its fiber and holds no thread) and trappable (a bad resource
//! handle traps the guest instead of panicking the host); the `handle` export
//! is async too. The `request` resource is backed by `request::Request`.

// Generated code; the WIT file documents every item.
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasmserve:handler/handler",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasmserve:handler/types.request": crate::wasm::request::Request,
        },
    });
}

pub(crate) use generated::Handler as HandlerWorld;
pub(crate) use generated::HandlerPre as HandlerWorldPre;
pub(crate) use generated::wasmserve::handler::config::{
    Host as ConfigHost, add_to_linker as add_config_to_linker,
};
pub(crate) use generated::wasmserve::handler::types::{
    Error as RequestError, Host as TypesHost, HostRequest, Transport, add_to_linker,
};

/// The fully qualified name of the world handlers must implement, for messages.
pub(crate) const WORLD_NAME: &str = "wasmserve:handler/handler@0.1.1";
