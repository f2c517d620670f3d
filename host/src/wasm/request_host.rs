//! The `request` resource's host functions: what the guest's calls do to
//! its [`Request`] and its instance's state (CPU budget renewal, counts,
//! the idle flag, the heavy lane, the lingering close). `write` is linked
//! by hand instead (see `write.rs`); the generated one here is shadowed.

use wasmtime::component::Resource;

use super::bindings::{self, HostRequest, RequestError, TypesHost};
use super::request::Request;
use super::state::InstanceState;
use crate::net::Transport;

impl TypesHost for InstanceState {}

impl HostRequest for InstanceState {
    async fn read(
        &mut self,
        this: Resource<Request>,
        max: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, RequestError>> {
        // Waiting for the client: no heavy-lane permit is held meanwhile.
        self.lane.release();
        let read = self.table.get_mut(&this)?.read(max).await;
        Ok(match read {
            Ok((bytes, waited)) => {
                // Only time spent waiting for the client renews the CPU
                // budget: a read that returns at once (input buffered
                // already, an end of stream seen before, a datagram's
                // payload) does not, so no call pattern resets it for free.
                if waited {
                    self.cpu.restart();
                }
                self.observer.bytes_in(bytes.len() as u64);
                Ok(bytes)
            }
            Err(err) => {
                if matches!(err, RequestError::TimedOut) {
                    self.idle_timed_out = true;
                }
                Err(err)
            }
        })
    }

    /// Shadowed by the chunked `write` (see `write.rs`); kept on the same
    /// path should it ever be called.
    async fn write(
        &mut self,
        this: Resource<Request>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<(), RequestError>> {
        self.write_to(&this, &bytes).await
    }

    async fn shutdown_write(
        &mut self,
        this: Resource<Request>,
    ) -> wasmtime::Result<Result<(), RequestError>> {
        Ok(self.table.get_mut(&this)?.shutdown_write().await)
    }

    async fn peer_addr(&mut self, this: Resource<Request>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.peer_addr().to_owned())
    }

    async fn local_addr(&mut self, this: Resource<Request>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.local_addr().to_owned())
    }

    async fn transport(
        &mut self,
        this: Resource<Request>,
    ) -> wasmtime::Result<bindings::Transport> {
        // The one place where the host's transport names meet the WIT's.
        Ok(match self.table.get(&this)?.transport() {
            Transport::Tcp => bindings::Transport::Tcp,
            Transport::Udp => bindings::Transport::Udp,
            Transport::Unix => bindings::Transport::UnixStream,
            Transport::UnixDgram => bindings::Transport::UnixDatagram,
        })
    }

    async fn drop(&mut self, this: Resource<Request>) -> wasmtime::Result<()> {
        if let Some(lingering) = self.table.delete(this)?.close() {
            self.lingering = Some(lingering);
        }
        Ok(())
    }
}
