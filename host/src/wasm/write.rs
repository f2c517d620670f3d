//! `request.write`, linked by hand so that host memory per connection stays
//! bounded whatever a guest writes.
//!
//! The generated binding would lift the guest's whole `list<u8>` into a host
//! `Vec` before the write starts, and hold it until the client has read it
//! all: one 60 MiB write to a client that does not read held 120 MiB of host
//! memory. This version takes the list as a [`WasmList`] (a view of guest
//! memory) and copies it out [`WRITE_CHUNK`] bytes at a time, each chunk
//! sent before the next is copied.

use wasmtime::component::{Linker, Resource, WasmList};
use wasmtime::{AsContext, AsContextMut};

use super::bindings::RequestError;
use super::request::{Request, WriteFailure};
use super::state::InstanceState;

/// The most bytes of one `write` the host holds at a time.
pub(crate) const WRITE_CHUNK: usize = 64 * 1024;

/// The WIT interface the `request` resource belongs to.
const TYPES_INTERFACE: &str = "wasmserve:handler/types@0.1.1";

/// Replaces the generated `[method]request.write` in `linker` (which must
/// already hold the generated bindings) with the chunked one.
pub(super) fn link_chunked_write(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(TYPES_INTERFACE)?.func_wrap_async(
        "[method]request.write",
        |mut store, (this, bytes): (Resource<Request>, WasmList<u8>)| {
            Box::new(async move {
                let written = write_chunked(store.as_context_mut(), &this, &bytes).await?;
                Ok((written,))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Writes all of `bytes` to the request's client, [`WRITE_CHUNK`] bytes of
/// host memory at a time. A datagram is one write, so it is never split: a
/// longer one than a datagram can carry is refused before any copy.
async fn write_chunked(
    mut store: wasmtime::StoreContextMut<'_, InstanceState>,
    this: &Resource<Request>,
    bytes: &WasmList<u8>,
) -> wasmtime::Result<Result<(), RequestError>> {
    let total = bytes.len();
    if total > WRITE_CHUNK && store.data().table.get(this)?.is_datagram() {
        return Ok(Err(RequestError::Other(format!(
            "a datagram reply of {total} bytes is longer than a datagram can be"
        ))));
    }
    let mut offset: usize = 0;
    // An empty write still reaches the socket: for a datagram it is an
    // empty datagram back.
    loop {
        let end = offset.saturating_add(WRITE_CHUNK).min(total);
        let chunk = bytes
            .as_le_slice(store.as_context())
            .get(offset..end)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        if let Err(err) = store.data_mut().write_to(this, &chunk).await? {
            return Ok(Err(err));
        }
        offset = end;
        if offset >= total {
            return Ok(Ok(()));
        }
    }
}

impl InstanceState {
    /// Writes `bytes` (all of them, or one datagram) to the request's client
    /// and keeps the books: the heavy-lane permit is given back (a write may
    /// wait for the client), bytes written are counted, and a reply the
    /// datagram's budget refused is counted and logged once per request.
    pub(super) async fn write_to(
        &mut self,
        this: &Resource<Request>,
        bytes: &[u8],
    ) -> wasmtime::Result<Result<(), RequestError>> {
        self.lane.release();
        Ok(match self.table.get_mut(this)?.write(bytes).await {
            Ok(()) => {
                self.observer.bytes_out(bytes.len() as u64);
                Ok(())
            }
            Err(WriteFailure::Io(err)) => Err(err),
            Err(WriteFailure::ReplyRefused(err)) => {
                self.observer.reply_refused();
                self.replies_refused += 1;
                // Logged once per request: a guest retrying in a loop must
                // not turn the refusal into a log flood.
                if self.replies_refused == 1 {
                    tracing::warn!("datagram reply refused: over the reply budget");
                }
                Err(err)
            }
        })
    }
}
