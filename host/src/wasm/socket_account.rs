//! The sockets a request may create.
//!
//! wasmtime-wasi opens an operating-system socket at `create-tcp-socket` and
//! `create-udp-socket`, before any address is checked: without a bound, one
//! request could hold thousands of descriptors (only the 4,096-handle table
//! stopped it) and a few requests every descriptor of the process, so no
//! listener could accept. Both are shadowed here: a service without
//! `--allow-connect` creates no socket at all (`access-denied`), and one
//! with it at most `--max-outbound` sockets per request (per instance),
//! TCP and UDP together (`new-socket-limit` past that). Name look-ups (DNS is off for
//! guests: `localhost`, and forms such as `127.1` that a guest's standard
//! library hands to the resolver) are refused with `access-denied` too.
//! Each refusal is counted as a refused outbound attempt and logged once
//! per request. The process's descriptor budget at start counts
//! `--max-outbound` per slot of every service that may connect
//! (`app::fit_os_limits`).

use wasmtime::component::{Linker, Resource, Val};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::Host as TcpCreate;
use wasmtime_wasi::p2::bindings::sockets::udp::{
    HostOutgoingDatagramStream as UdpStream, OutgoingDatagram, OutgoingDatagramStream,
};
use wasmtime_wasi::p2::bindings::sockets::udp_create_socket::Host as UdpCreate;
use wasmtime_wasi::p2::{TcpSocket, UdpSocket};
use wasmtime_wasi::sockets::WasiSocketsView;

use super::guest_text::sanitize;
use super::state::{InstanceState, OutboundResult};

const TCP_CREATE_INTERFACE: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const UDP_CREATE_INTERFACE: &str = "wasi:sockets/udp-create-socket@0.2.12";
const NAME_LOOKUP_INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";
const UDP_INTERFACE: &str = "wasi:sockets/udp@0.2.12";

/// The most characters of a guest-given name that reach the log.
const MAX_NAME_CHARS: usize = 128;

/// How many sockets one instance created, what it sent as UDP datagrams,
/// and whether a refusal was logged. Not reset between the datagrams a
/// warm instance serves: it may keep sockets from one to the next, so its
/// account is its lifetime's (as `--max-outbound`'s connect count is).
#[derive(Debug, Default)]
pub(crate) struct SocketAccount {
    created: u32,
    datagrams: u32,
    datagram_bytes: u64,
    logged: bool,
}

impl InstanceState {
    /// Takes one socket from this request's account, or says why not.
    fn take_socket(&mut self, kind: &str) -> Result<(), ErrorCode> {
        self.take_socket_or_why(kind).map_err(|(code, _)| code)
    }

    /// Like `take_socket`, with the refusal's words too (counted and
    /// logged already).
    pub(super) fn take_socket_or_why(&mut self, kind: &str) -> Result<(), (ErrorCode, String)> {
        let policy = &self.env.outbound;
        let refusal = match (policy.is_open(), self.socket_account.created) {
            (false, _) => Some((
                ErrorCode::AccessDenied,
                format!(
                    "a {kind} socket: this service has no --allow-connect (handlers connect nowhere by default)"
                ),
            )),
            (true, created) if created >= policy.max_per_request => Some((
                ErrorCode::NewSocketLimit,
                format!(
                    "more than {} sockets in one request (--max-outbound)",
                    policy.max_per_request
                ),
            )),
            (true, _) => None,
        };
        let Some((code, why)) = refusal else {
            self.socket_account.created += 1;
            return Ok(());
        };
        self.refuse_outbound(|| why.clone());
        Err((code, why))
    }

    /// How many of `datagrams` fit what is left of the request's datagram
    /// budget (`--max-outbound-datagrams`, `--max-outbound-datagram-bytes`).
    fn datagrams_that_fit(&self, datagrams: &[OutgoingDatagram]) -> usize {
        let budget = self.env.outbound.datagrams;
        let account = &self.socket_account;
        let mut bytes = account.datagram_bytes;
        let room = budget.datagrams.saturating_sub(account.datagrams) as usize;
        datagrams
            .iter()
            .take(room)
            .take_while(|datagram| {
                bytes = bytes.saturating_add(datagram.data.len() as u64);
                bytes <= budget.bytes
            })
            .count()
    }

    /// Counts an outbound attempt the host refused, and logs why (`why` is
    /// asked once per request at most: the first refusal's line).
    pub(super) fn refuse_outbound(&mut self, why: impl FnOnce() -> String) {
        self.books.observer.outbound(OutboundResult::Refused);
        if !std::mem::replace(&mut self.socket_account.logged, true) {
            tracing::warn!("outbound refused: {}", why());
        }
    }
}

/// Shadows `create-tcp-socket` and `create-udp-socket` in `linker` (which
/// must already hold wasmtime-wasi's).
pub(super) fn link_socket_account(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(TCP_CREATE_INTERFACE)?.func_wrap(
        "create-tcp-socket",
        |mut store,
         (family,): (IpAddressFamily,)|
         -> wasmtime::Result<(Result<Resource<TcpSocket>, ErrorCode>,)> {
            let state: &mut InstanceState = store.data_mut();
            if let Err(code) = state.take_socket("TCP") {
                return Ok((Err(code),));
            }
            match TcpCreate::create_tcp_socket(&mut state.sockets(), family) {
                Ok(socket) => Ok((Ok(socket),)),
                Err(err) => Ok((Err(err.downcast()?),)),
            }
        },
    )?;
    linker.instance(UDP_CREATE_INTERFACE)?.func_wrap_async(
        "create-udp-socket",
        |mut store, (family,): (IpAddressFamily,)| {
            Box::new(async move {
                let state: &mut InstanceState = store.data_mut();
                if let Err(code) = state.take_socket("UDP") {
                    return Ok((Err(code),));
                }
                let created: Result<Resource<UdpSocket>, _> =
                    UdpCreate::create_udp_socket(&mut state.sockets(), family).await;
                match created {
                    Ok(socket) => Ok((Ok(socket),)),
                    Err(err) => Ok((Err(err.downcast()?),)),
                }
            })
        },
    )?;
    // The stream type of a look-up is private to wasmtime-wasi: this
    // function is defined with dynamic values, and only ever fails.
    linker.instance(NAME_LOOKUP_INTERFACE)?.func_new_async(
        "resolve-addresses",
        |mut store, _ty, params, results| {
            Box::new(async move {
                let name = match params.get(1) {
                    Some(Val::String(name)) => sanitize(name, MAX_NAME_CHARS),
                    _ => String::new(),
                };
                // The borrowed `network` ends with the call.
                if let Some(Val::Resource(network)) = params.first() {
                    network.resource_drop_async(&mut store).await?;
                }
                store.data_mut().refuse_outbound(|| {
                    format!(
                        "name lookup of {name:?}: guests have no DNS (pass upstreams as addresses)"
                    )
                });
                if let Some(result) = results.first_mut() {
                    *result =
                        Val::Result(Err(Some(Box::new(Val::Enum("access-denied".to_owned())))));
                }
                Ok(())
            })
        },
    )?;
    linker.instance(UDP_INTERFACE)?.func_wrap(
        "[method]outgoing-datagram-stream.send",
        |mut store,
         (this, datagrams): (Resource<OutgoingDatagramStream>, Vec<OutgoingDatagram>)|
         -> wasmtime::Result<(Result<u64, ErrorCode>,)> {
            let state: &mut InstanceState = store.data_mut();
            let asked = datagrams.len();
            let fit = state.datagrams_that_fit(&datagrams);
            if fit == 0 && asked > 0 {
                state.books.observer.outbound_datagrams(0, asked as u64);
                let budget = state.env.outbound.datagrams;
                state.refuse_outbound(|| {
                    format!(
                        "datagrams past the request's budget of {} datagrams, {} bytes (--max-outbound-datagrams, --max-outbound-datagram-bytes)",
                        budget.datagrams, budget.bytes
                    )
                });
                return Ok((Err(ErrorCode::AccessDenied),));
            }
            let mut datagrams = datagrams;
            datagrams.truncate(fit);
            let sizes: Vec<u64> = datagrams.iter().map(|d| d.data.len() as u64).collect();
            match UdpStream::send(&mut state.sockets(), this, datagrams) {
                Ok(sent) => {
                    let count = usize::try_from(sent).unwrap_or(usize::MAX).min(sizes.len());
                    let account = &mut state.socket_account;
                    account.datagrams += count as u32;
                    account.datagram_bytes += sizes[..count].iter().sum::<u64>();
                    state.books.observer.outbound_datagrams(count as u64, 0);
                    Ok((Ok(sent),))
                }
                Err(err) => Ok((Err(err.downcast()?),)),
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
