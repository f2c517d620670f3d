//! Integration tests: each starts the real `wasmserve` binary with a real
//! compiled handler and talks to it over real sockets.
//!
//! The handlers are built for wasm32-wasip2 once, by this crate's build
//! script; their paths are the constants in [`fixtures`].

mod fixtures {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}
mod support;

mod access_control;
mod access_log;
mod bad_input;
mod chatroom;
mod config_file;
mod contract;
mod counters;
mod deploy_files;
mod docs;
mod docs_runner;
mod echo;
mod examples;
mod expiry;
mod greet;
mod guest_failures;
mod hand_off;
mod hang_up;
mod haproxy;
mod health;
mod hostile;
mod inetd;
mod instances;
mod languages;
mod limits;
mod observing;
mod oci;
mod outbound;
mod overload;
mod pki;
mod poll_limits;
mod privileges;
mod redis_server;
mod redis_suite;
mod registry_server;
mod reload;
mod scaffold;
mod service_spec;
mod shared_state;
mod shutdown;
mod tls;
mod transports;
mod wit_versions;
