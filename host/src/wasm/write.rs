//! `request.write` (both versions) and 0.2's `request.try-write`, linked by
//! hand so that host memory per connection stays bounded whatever a guest
//! writes.
//!
//! The generated bindings would lift the guest's whole `list<u8>` into a
//! host `Vec` before the write starts, and hold it until the client has
//! read it all: one 60 MiB write to a client that does not read held
//! 120 MiB of host memory. These versions take the list as a [`WasmList`]
//! (a view of guest memory) and copy it out [`WRITE_CHUNK`] bytes at a
//! time, each chunk sent before the next is copied; `try-write` copies at
//! most one chunk.

use wasmtime::component::{ComponentType, Linker, Lower, Resource, WasmList};
use wasmtime::{AsContext, AsContextMut};

use super::bindings::{current, previous};
use super::connection::Connection;
use super::io_failure::IoFailure;
use super::request::Request;
use super::state::InstanceState;

/// The most bytes of one `write` the host holds at a time.
pub(crate) const WRITE_CHUNK: usize = 64 * 1024;

/// Replaces the generated `[method]request.write` of every contract
/// version, and 0.2's `[method]request.try-write`, in `linker` (which must
/// already hold the generated bindings) with the bounded ones.
pub(super) fn link_bounded_writes(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    link_chunked_write::<previous::RequestError>(linker, previous::TYPES_INTERFACE)?;
    link_chunked_write::<current::RequestError>(linker, current::TYPES_INTERFACE)?;
    linker.instance(current::TYPES_INTERFACE)?.func_wrap_async(
        "[method]request.try-write",
        |store, (this, bytes): (Resource<Request>, WasmList<u8>)| {
            Box::new(async move {
                let written = try_write_chunk(store, &this, &bytes)?;
                Ok((written.map_err(current::RequestError::from),))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Links the chunked `write` into `interface`, reporting failures as `E`.
fn link_chunked_write<E>(
    linker: &mut Linker<InstanceState>,
    interface: &str,
) -> wasmtime::Result<()>
where
    E: From<IoFailure> + ComponentType + Lower + Send + Sync + 'static,
{
    linker.instance(interface)?.func_wrap_async(
        "[method]request.write",
        |mut store, (this, bytes): (Resource<Request>, WasmList<u8>)| {
            Box::new(async move {
                let written = write_chunked(store.as_context_mut(), &this, &bytes).await?;
                Ok((written.map_err(E::from),))
            })
        },
    )
}

/// Writes all of `bytes` to the request's client, [`WRITE_CHUNK`] bytes of
/// host memory at a time. A datagram is one write, so it is never split: a
/// longer one than a datagram can carry is refused before any copy.
async fn write_chunked(
    store: wasmtime::StoreContextMut<'_, InstanceState>,
    this: &Resource<Request>,
    bytes: &WasmList<u8>,
) -> wasmtime::Result<Result<(), IoFailure>> {
    let total = bytes.len();
    let conn = store.data().connection(this)?;
    if let Some(refused) = oversized_datagram(&conn, total) {
        return Ok(Err(refused));
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
        if let Err(failure) = conn.write_all(&chunk).await {
            return Ok(Err(failure));
        }
        offset = end;
        if offset >= total {
            return Ok(Ok(()));
        }
    }
}

/// Writes what the socket takes now of the first [`WRITE_CHUNK`] bytes of
/// `bytes`, reading them where they are in guest memory.
fn try_write_chunk(
    store: wasmtime::StoreContextMut<'_, InstanceState>,
    this: &Resource<Request>,
    bytes: &WasmList<u8>,
) -> wasmtime::Result<Result<u32, IoFailure>> {
    let conn = store.data().connection(this)?;
    if let Some(refused) = oversized_datagram(&conn, bytes.len()) {
        return Ok(Err(refused));
    }
    let guest = bytes.as_le_slice(store.as_context());
    let chunk = guest
        .get(..WRITE_CHUNK.min(guest.len()))
        .unwrap_or_default();
    Ok(conn
        .try_write(chunk)
        .map(|written| u32::try_from(written).unwrap_or(u32::MAX)))
}

/// The failure for a datagram reply of `len` bytes, longer than one write
/// may be (a datagram is never split); `None` when it fits or is a stream.
fn oversized_datagram(conn: &Connection, len: usize) -> Option<IoFailure> {
    (len > WRITE_CHUNK && !conn.is_stream()).then(|| {
        IoFailure::Other(format!(
            "a datagram reply of {len} bytes is longer than a datagram can be"
        ))
    })
}
