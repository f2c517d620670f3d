//! The host's connect timeout for a guest's outbound TCP
//! (`--connect-timeout`).
//!
//! wasmtime-wasi runs a guest's connect as a future that makes progress
//! only while the guest waits on the socket's pollable, and gives it no
//! timeout of its own: a connect to an address that never answers (its
//! SYNs dropped) would wait for the kernel's retries, about two minutes,
//! however the guest was written. So `start-connect` starts a deadline,
//! the socket's `subscribe` remembers which pollable stands for it, and
//! `poll` / `pollable.block` / `pollable.ready` are shadowed: a connect
//! that has not finished by its deadline makes its pollable ready, and
//! `finish-connect` (see `upstream.rs`) then fails with `timeout`, as it
//! would for a kernel time-out.
//!
//! Both maps hold at most one entry per guest handle, so they are bounded
//! by the instance's handle cap.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::io::poll::{Host as PollHost, HostPollable};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpSocketAddress, Network};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::{DynPollable, TcpSocket};
use wasmtime_wasi::sockets::WasiSocketsView;

use super::state::InstanceState;

/// How long a guest's TCP connect may take unless configured.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The WASI 0.2 interfaces whose functions are shadowed here.
const POLL_INTERFACE: &str = "wasi:io/poll@0.2.12";
pub(super) const TCP_INTERFACE: &str = "wasi:sockets/tcp@0.2.12";

/// One instance's connects in progress, and their deadlines.
#[derive(Debug, Default)]
pub(crate) struct ConnectDeadlines {
    /// Socket handle → when its connect times out, and whether it did.
    sockets: HashMap<u32, Deadline>,
    /// Pollable handle → the socket it was subscribed from.
    pollables: HashMap<u32, u32>,
}

/// When one connect times out.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    /// Whether the guest was told (`finish-connect` failed with `timeout`).
    told: bool,
}

impl ConnectDeadlines {
    fn started(&mut self, socket: u32, timeout: Duration) {
        let at = Instant::now() + timeout;
        self.sockets.insert(socket, Deadline { at, told: false });
    }

    fn subscribed(&mut self, pollable: u32, socket: u32) {
        if self.sockets.contains_key(&socket) {
            self.pollables.insert(pollable, socket);
        }
    }

    /// Whether `socket`'s connect is past its deadline: `Some(true)` the
    /// first time the guest is told so, `Some(false)` after.
    pub(super) fn timed_out(&mut self, socket: u32) -> Option<bool> {
        let deadline = self.sockets.get_mut(&socket)?;
        if deadline.at > Instant::now() {
            return None;
        }
        Some(!std::mem::replace(&mut deadline.told, true))
    }

    /// `socket`'s connect finished (either way): forget it.
    pub(super) fn finished(&mut self, socket: u32) {
        if self.sockets.remove(&socket).is_some() {
            self.pollables.retain(|_, of| *of != socket);
        }
    }

    /// Whether no connect is in flight (or timed out and kept).
    fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    fn deadline_of(&self, pollable: u32) -> Option<Instant> {
        self.pollables
            .get(&pollable)
            .and_then(|socket| self.sockets.get(socket))
            .map(|deadline| deadline.at)
    }

    /// The earliest deadline among `pollables`, if any stands for a
    /// connect.
    fn earliest(&self, pollables: &[u32]) -> Option<Instant> {
        pollables.iter().filter_map(|p| self.deadline_of(*p)).min()
    }

    /// Whether `pollable` stands for a connect past its deadline.
    fn expired(&self, pollable: u32) -> bool {
        self.deadline_of(pollable)
            .is_some_and(|deadline| deadline <= Instant::now())
    }

    /// The positions in `pollables` of connects past their deadline.
    fn expired_positions(&self, pollables: &[u32]) -> Vec<u32> {
        (0u32..)
            .zip(pollables)
            .filter(|(_, pollable)| self.expired(**pollable))
            .map(|(position, _)| position)
            .collect()
    }
}

/// Shadows `start-connect`, the TCP socket's `subscribe`, and the three
/// waits of `wasi:io/poll` in `linker` (which must already hold
/// wasmtime-wasi's).
pub(super) fn link_connect_deadlines(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut tcp = linker.instance(TCP_INTERFACE)?;
    tcp.func_wrap(
        "[method]tcp-socket.start-connect",
        |mut store,
         (this, network, remote): (Resource<TcpSocket>, Resource<Network>, IpSocketAddress)|
         -> wasmtime::Result<(Result<(), ErrorCode>,)> {
            let state: &mut InstanceState = store.data_mut();
            let socket = this.rep();
            let addr = std::net::SocketAddr::from(remote);
            let started = HostTcpSocket::start_connect(&mut state.sockets(), this, network, remote);
            match started {
                Ok(()) => {
                    let timeout = state.env.outbound.connect_timeout;
                    state.connects.started(socket, timeout);
                    Ok((Ok(()),))
                }
                Err(err) => match err.downcast()? {
                    // wasmtime-wasi rejects some forms (0.0.0.0, [::], an
                    // IPv4-mapped address, broadcast, port 0) before the
                    // allow-list is asked: a refusal like any other.
                    ErrorCode::InvalidArgument if !state.env.outbound.permits(addr) => {
                        state.refuse_outbound(|| {
                            format!("{addr}: not a connectable address in --allow-connect")
                        });
                        Ok((Err(ErrorCode::AccessDenied),))
                    }
                    code => Ok((Err(code),)),
                },
            }
        },
    )?;
    tcp.func_wrap(
        "[method]tcp-socket.subscribe",
        |mut store, (this,): (Resource<TcpSocket>,)| {
            let state: &mut InstanceState = store.data_mut();
            let socket = this.rep();
            let pollable = HostTcpSocket::subscribe(&mut state.sockets(), this)?;
            state.connects.subscribed(pollable.rep(), socket);
            Ok((pollable,))
        },
    )?;
    let mut poll = linker.instance(POLL_INTERFACE)?;
    poll.func_wrap_async(
        "poll",
        |mut store, (list,): (Vec<Resource<DynPollable>>,)| {
            Box::new(async move {
                let state: &mut InstanceState = store.data_mut();
                // Most polls have no connect in flight: no list to copy.
                let reps: Vec<u32> = match state.connects.is_empty() {
                    true => Vec::new(),
                    false => list.iter().map(Resource::rep).collect(),
                };
                let Some(deadline) = state.connects.earliest(&reps) else {
                    return Ok((PollHost::poll(&mut state.table, list).await?,));
                };
                let waited = tokio::time::timeout_at(
                    deadline.into(),
                    PollHost::poll(&mut state.table, list),
                )
                .await;
                match waited {
                    Ok(ready) => Ok((ready?,)),
                    Err(_) => Ok((state.connects.expired_positions(&reps),)),
                }
            })
        },
    )?;
    poll.func_wrap_async(
        "[method]pollable.block",
        |mut store, (this,): (Resource<DynPollable>,)| {
            Box::new(async move {
                let state: &mut InstanceState = store.data_mut();
                let Some(deadline) = state.connects.deadline_of(this.rep()) else {
                    return HostPollable::block(&mut state.table, this).await;
                };
                let waited = tokio::time::timeout_at(
                    deadline.into(),
                    HostPollable::block(&mut state.table, this),
                )
                .await;
                waited.unwrap_or(Ok(()))
            })
        },
    )?;
    poll.func_wrap_async(
        "[method]pollable.ready",
        |mut store, (this,): (Resource<DynPollable>,)| {
            Box::new(async move {
                let state: &mut InstanceState = store.data_mut();
                match state.connects.expired(this.rep()) {
                    true => Ok((true,)),
                    false => Ok((HostPollable::ready(&mut state.table, this).await?,)),
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
