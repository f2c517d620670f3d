//! The wasm layer: the engine and its one epoch ticker, the generated
//! bindings of the WIT contract, loading and checking a handler component,
//! and serving one request in an instance under its limits. It reports what
//! it counts upward through [`RequestObserver`]; it knows nothing of
//! services, listeners or metrics.
//!
//! Capabilities that later contract versions add (state, channels,
//! outbound connections) each get a module here and are linked into the
//! store in one place: `component::host_linker` and [`state::InstanceState`].

mod activity;
mod bindings;
mod books;
mod channels_host;
mod component;
mod connect_deadline;
mod connection;
mod datagram;
mod engine;
mod failure;
mod function_cache;
mod guest_output;
mod guest_text;
mod hand_off;
mod heavy_lane;
mod held_upstream;
mod instance;
mod io_failure;
mod keyspace_host;
mod keyvalue_host;
mod limits;
mod meter_clock;
mod optional_imports;
mod outbound;
mod outbox;
mod random_bytes;
mod relay;
mod request;
mod request_host;
mod slot;
mod socket_account;
mod socket_io;
mod state;
mod streams;
mod upstream;
mod write;

pub(crate) use activity::Activity;
pub(crate) use books::Direction;
pub(crate) use component::Handler;
pub(crate) use connect_deadline::DEFAULT_CONNECT_TIMEOUT;
pub(crate) use engine::{DEFAULT_KEEP_RESIDENT, EngineLimits, build_engine, fit_os_limits};
pub(crate) use failure::FailureCause;
pub(crate) use guest_text::sanitize;
pub(crate) use hand_off::HandOff;
pub(crate) use instance::{InstanceChoice, MAX_WARM_INSTANCES};
pub(crate) use limits::ConnectionLimits;
pub(crate) use outbound::{DEFAULT_MAX_OUTBOUND, DatagramBudget, OutboundPolicy};
pub(crate) use outbox::send_held_on_park;
pub(crate) use request::Request;
pub(crate) use slot::{HandlerSlot, ReloadOutcome, load_off_runtime};
pub(crate) use state::{HandlerEnv, OutboundResult, RequestObserver, Settings, UpstreamTally};
