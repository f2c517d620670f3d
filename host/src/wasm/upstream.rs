//! Counting the bytes a guest moves on each outbound TCP connection: the
//! socket's streams, as wasmtime-wasi hands them out at `finish-connect`,
//! are wrapped before the guest sees them, and each read and write is told
//! to the observer under the allow-list entry that let the connection
//! through.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamResult, TcpSocket,
};
use wasmtime_wasi::sockets::WasiSocketsView;

use super::books::Direction;
use super::state::{InstanceState, OutboundResult, UpstreamTally};

/// An upstream's input stream, counted.
struct CountedInput {
    inner: DynInputStream,
    tally: Arc<dyn UpstreamTally>,
}

#[async_trait]
impl Pollable for CountedInput {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[async_trait]
impl InputStream for CountedInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let bytes = self.inner.read(size)?;
        self.tally.bytes(Direction::In, bytes.len() as u64);
        Ok(bytes)
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

/// An upstream's output stream, counted.
struct CountedOutput {
    inner: DynOutputStream,
    tally: Arc<dyn UpstreamTally>,
}

#[async_trait]
impl Pollable for CountedOutput {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[async_trait]
impl OutputStream for CountedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let len = bytes.len() as u64;
        self.inner.write(bytes)?;
        self.tally.bytes(Direction::Out, len);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

type ConnectResult = Result<(Resource<DynInputStream>, Resource<DynOutputStream>), ErrorCode>;

/// Replaces wasmtime-wasi's `finish-connect` with one that wraps the
/// streams it returns, and fails with `timeout` once the connect is past
/// its deadline (`connect_deadline.rs`).
pub(super) fn link_counted_connect(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut tcp = linker.instance(super::connect_deadline::TCP_INTERFACE)?;
    tcp.func_wrap(
        "[method]tcp-socket.finish-connect",
        |mut store, (this,): (Resource<TcpSocket>,)| -> wasmtime::Result<(ConnectResult,)> {
            let state: &mut InstanceState = store.data_mut();
            let socket = this.rep();
            if let Some(first) = state.connects.timed_out(socket) {
                if first {
                    state.books.observer.outbound(OutboundResult::TimedOut);
                }
                return Ok((Err(ErrorCode::Timeout),));
            }
            let connected = {
                let mut view = state.sockets();
                HostTcpSocket::finish_connect(&mut view, Resource::new_borrow(socket))
            };
            let (input, output) = match connected {
                Ok(streams) => streams,
                Err(err) => {
                    let code: ErrorCode = err.downcast()?;
                    if code != ErrorCode::WouldBlock {
                        state.connects.finished(socket);
                    }
                    return Ok((Err(code),));
                }
            };
            state.connects.finished(socket);
            // Only a connected socket has a remote address: ask after.
            let remote = {
                let mut view = state.sockets();
                HostTcpSocket::remote_address(&mut view, Resource::new_borrow(this.rep()))
            };
            let label = remote
                .ok()
                .map(std::net::SocketAddr::from)
                .and_then(|addr| state.env.outbound.label_for(addr))
                .unwrap_or_else(|| "unknown".into());
            let tally = state.books.observer.upstream(&label);
            let input: DynInputStream = Box::new(CountedInput {
                inner: state.table.delete(input)?,
                tally: Arc::clone(&tally),
            });
            let output: DynOutputStream = Box::new(CountedOutput {
                inner: state.table.delete(output)?,
                tally,
            });
            let owner = Resource::<TcpSocket>::new_borrow(this.rep());
            let input = state.table.push_child(input, &owner)?;
            let output = state.table.push_child(output, &owner)?;
            Ok((Ok((input, output)),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
