//! The data every per-request `Store` holds.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::guest_output::{GuestOutput, GuestStream};

/// The store data of one handler instance, which lives exactly as long as one
/// request (one connection or one datagram).
pub struct InstanceState {
    /// Every resource the guest holds a handle to: its `request`, and the
    /// WASI streams for its stdout and stderr.
    pub(crate) table: ResourceTable,
    /// The guest's WASI context, locked down: no preopened directories, no
    /// environment, no arguments, no sockets, no name lookups; stdin is
    /// empty and stdout/stderr go to the host log.
    wasi: WasiCtx,
}

impl std::fmt::Debug for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceState").finish_non_exhaustive()
    }
}

impl InstanceState {
    /// Fresh state for one request, with the locked-down WASI context.
    pub fn new() -> Self {
        let wasi = WasiCtx::builder()
            .stdout(GuestOutput::new(GuestStream::Stdout))
            .stderr(GuestOutput::new(GuestStream::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            table: ResourceTable::new(),
            wasi,
        }
    }
}

impl Default for InstanceState {
    fn default() -> Self {
        Self::new()
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
