//! The `request` resource's host functions, for both contract versions the
//! host serves: 0.1.1's methods and 0.2.0's (the same, plus non-blocking
//! reads and writes, pollables and streams). Each version's generated
//! trait gets the same bodies from one macro; the work is in
//! [`Connection`]. `write` and `try-write` are linked by hand instead (see
//! `write.rs`); the generated ones here are shadowed.

use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, subscribe};

use super::bindings::{current, previous};
use super::connection::Connection;
use super::io_failure::IoFailure;
use super::request::Request;
use super::state::InstanceState;
use super::streams::{RequestInput, RequestOutput, WriteReady};
use crate::net::Transport;

/// The methods both versions share, with each version's error and
/// transport types.
macro_rules! shared_request_methods {
    ($version:ident) => {
        async fn read(
            &mut self,
            this: Resource<Request>,
            max: u32,
        ) -> wasmtime::Result<Result<Vec<u8>, $version::RequestError>> {
            let conn = self.table.get(&this)?.connection();
            Ok(conn.read(max as usize).await.map_err(Into::into))
        }

        /// Shadowed by the chunked `write` (see `write.rs`); kept on the same
        /// path should it ever be called.
        async fn write(
            &mut self,
            this: Resource<Request>,
            bytes: Vec<u8>,
        ) -> wasmtime::Result<Result<(), $version::RequestError>> {
            let conn = self.table.get(&this)?.connection();
            Ok(conn.write_all(&bytes).await.map_err(Into::into))
        }

        async fn shutdown_write(
            &mut self,
            this: Resource<Request>,
        ) -> wasmtime::Result<Result<(), $version::RequestError>> {
            let conn = self.table.get(&this)?.connection();
            if let Err(failure) = conn.flush().await {
                return Ok(Err(failure.into()));
            }
            Ok(conn.shutdown_write().map_err(Into::into))
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
        ) -> wasmtime::Result<$version::Transport> {
            // Where the host's transport names meet the WIT's.
            Ok(match self.table.get(&this)?.transport() {
                Transport::Tcp => $version::Transport::Tcp,
                Transport::Udp => $version::Transport::Udp,
                Transport::Unix => $version::Transport::UnixStream,
                Transport::UnixDgram => $version::Transport::UnixDatagram,
            })
        }

        async fn drop(&mut self, this: Resource<Request>) -> wasmtime::Result<()> {
            self.drop_request(this)
        }
    };
}

/// Each version's error type from the host's [`IoFailure`].
macro_rules! request_error_from {
    ($version:ident) => {
        impl From<IoFailure> for $version::RequestError {
            fn from(failure: IoFailure) -> Self {
                match failure {
                    IoFailure::Closed => Self::Closed,
                    IoFailure::TimedOut => Self::TimedOut,
                    IoFailure::Other(message) => Self::Other(message),
                }
            }
        }

        impl $version::TypesHost for InstanceState {}
    };
}

request_error_from!(previous);
request_error_from!(current);

impl previous::HostRequest for InstanceState {
    shared_request_methods!(previous);
}

impl current::HostRequest for InstanceState {
    shared_request_methods!(current);

    async fn try_read(
        &mut self,
        this: Resource<Request>,
        max: u32,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, current::RequestError>> {
        let conn = self.table.get(&this)?.connection();
        Ok(conn.try_read(max as usize).map_err(Into::into))
    }

    /// Shadowed by the bounded `try-write` (see `write.rs`).
    async fn try_write(
        &mut self,
        this: Resource<Request>,
        bytes: Vec<u8>,
    ) -> wasmtime::Result<Result<u32, current::RequestError>> {
        let conn = self.table.get(&this)?.connection();
        Ok(conn
            .try_write(&bytes)
            .map(|written| u32::try_from(written).unwrap_or(u32::MAX))
            .map_err(Into::into))
    }

    async fn subscribe_readable(
        &mut self,
        this: Resource<Request>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = RequestInput(self.connection(&this)?);
        let ready = self.table.push(ready)?;
        subscribe(&mut self.table, ready)
    }

    async fn subscribe_writable(
        &mut self,
        this: Resource<Request>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = WriteReady(self.connection(&this)?);
        let ready = self.table.push(ready)?;
        subscribe(&mut self.table, ready)
    }

    async fn streams(
        &mut self,
        this: Resource<Request>,
    ) -> wasmtime::Result<
        Result<(Resource<DynInputStream>, Resource<DynOutputStream>), current::RequestError>,
    > {
        let conn = match self.table.get_mut(&this)?.take_streams() {
            Ok(conn) => conn,
            Err(failure) => return Ok(Err(failure.into())),
        };
        let input: DynInputStream = Box::new(RequestInput(Arc::clone(&conn)));
        let output: DynOutputStream = Box::new(RequestOutput::new(conn));
        let input = self.table.push(input)?;
        let output = self.table.push(output)?;
        Ok(Ok((input, output)))
    }

    async fn hand_off(
        &mut self,
        this: Resource<Request>,
        upstream: String,
        first: Vec<u8>,
    ) -> wasmtime::Result<Result<(), current::HandOffError>> {
        InstanceState::hand_off(self, &this, &upstream, first).await
    }

    async fn tls(&mut self, this: Resource<Request>) -> wasmtime::Result<Option<current::TlsInfo>> {
        Ok(self.table.get(&this)?.tls().map(|info| current::TlsInfo {
            version: info.version.clone(),
            cipher: info.cipher.clone(),
            alpn: info.alpn.clone(),
            server_name: info.server_name.clone(),
            client_subject: info.client_subject.clone(),
        }))
    }
}

impl InstanceState {
    /// The socket behind the guest's request handle.
    pub(super) fn connection(&self, this: &Resource<Request>) -> wasmtime::Result<Arc<Connection>> {
        Ok(Arc::clone(self.table.get(this)?.connection()))
    }

    /// The guest dropped its request: the lingering close starts once the
    /// instance is gone.
    fn drop_request(&mut self, this: Resource<Request>) -> wasmtime::Result<()> {
        if let Some(lingering) = self.table.delete(this)?.close() {
            self.lingering = Some(lingering);
        }
        Ok(())
    }
}
