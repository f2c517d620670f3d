//! Serving one request: a fresh (or, for datagrams with
//! `--reuse-datagram-instances`, a warm) instance of a [`Handler`], its
//! `handle` call under the request's limits, and the cause when it ends
//! badly.

use std::sync::Arc;

use wasmtime::{Store, UpdateDeadline};

use super::bindings::{current, previous};
use super::component::{Handler, HandlerPre};
use super::failure::{FailureCause, HandleError};
use super::guest_text::{report_dropped, sanitize};
use super::hand_off::HandOff;
use super::heavy_lane::HEAVY_AFTER;
use super::limits::{ConnectionLimits, CpuBudgetExceeded};
use super::request::Request;
use super::state::{InstanceState, MAX_HANDLES, RequestObserver};
use crate::error::one_line;

impl Handler {
    /// Serves one request under `limits`, in a fresh instance or, with
    /// [`InstanceChoice::Warm`], in one kept from an earlier request. A
    /// fresh instance, and a warm one whose guest trapped or ran out of
    /// time, is dropped with everything it allocated when this returns.
    /// A request the guest handed off comes back as the [`HandOff`] to
    /// relay (the instance gone already).
    pub(crate) async fn handle(
        &self,
        request: Request,
        choice: InstanceChoice,
        limits: &ConnectionLimits,
        observer: &Arc<dyn RequestObserver>,
    ) -> Result<Option<HandOff>, HandleError> {
        // The lifetime covers everything the guest runs: its start-up code
        // (instantiation) as much as `handle`.
        let deadline = limits
            .max_lifetime
            .map(|lifetime| (tokio::time::Instant::now() + lifetime, lifetime));
        let warm = match choice {
            InstanceChoice::Warm => self.take_warm(),
            InstanceChoice::Fresh => None,
        };
        let mut instance = match warm {
            Some(instance) => instance,
            // Boxed: instantiating needs a large future for a moment; held
            // inline, its size would stay in every connection's task for
            // the connection's life (this future was 4.8 KiB, now 1.2).
            None => within(deadline, Box::pin(self.instantiate(limits, observer))).await??,
        };
        // A fresh instance's state is new already; a reused one starts over.
        if instance.served > 0 {
            instance.store.data_mut().begin_request();
        }
        instance.served += 1;
        instance.store.set_epoch_deadline(1);
        // The socket keeps this request's books: bytes, idleness, the CPU
        // budget's renewal.
        request
            .connection()
            .attach(Arc::clone(&instance.store.data().books));
        let request = instance
            .store
            .data_mut()
            .table
            .push(request)
            .map_err(|err| instantiate_error(&err.into()))?;

        let cpu = Arc::clone(&instance.store.data().books.cpu);
        let lane = instance.store.data().lane.clone();
        let call = cpu.meter(
            instance.world.call_handle(&mut instance.store, request),
            lane,
        );
        let outcome = within(deadline, call).await;
        instance.store.data().books.report_all();
        let outcome = outcome?;
        let state = instance.store.data();
        report_dropped(state.log_budget.take_dropped());
        // The guest's error text is guest-controlled: escaped and cut, so it
        // stays one log line.
        let guest_text = |message: &str| sanitize(message, MAX_ERROR_CHARS);
        let result = match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) if state.books.idle_timed_out() => Err(HandleError::new(
                FailureCause::IdleTimeout,
                format!(
                    "client idle past --idle-timeout (or silent past --first-byte-timeout); handler returned an error: {}",
                    guest_text(&message)
                ),
            )),
            Ok(Err(message)) if state.books.client_gone() => Err(HandleError::new(
                FailureCause::ClientClosed,
                format!(
                    "the client closed the connection; handler returned: {}",
                    guest_text(&message)
                ),
            )),
            Ok(Err(message)) => Err(HandleError::new(
                FailureCause::GuestError,
                format!("handler returned an error: {}", guest_text(&message)),
            )),
            // A trapped instance is never used again.
            Err(err) => return Err(classify_trap(&err, state)),
        };
        let lingering = instance.store.data_mut().lingering.take();
        let hand_off = instance.store.data_mut().hand_off.take();
        if choice == InstanceChoice::Warm {
            self.keep_warm(instance);
        } else {
            // The instance (its pool slot) goes first; the socket's
            // lingering close, or its relay, needs none of it.
            drop(instance);
        }
        match hand_off {
            // A handler that handed its request off and returned `ok` is
            // done: the caller relays, within the request's lifetime.
            Some(hand_off) if result.is_ok() => {
                Ok(Some(hand_off.within(deadline.map(|(at, _)| at))))
            }
            // Otherwise the upstream connection closes unused.
            _ => {
                if let Some(lingering) = lingering {
                    lingering.await;
                }
                result.map(|()| None)
            }
        }
    }

    /// Creates a fresh instance with its own store under `limits`.
    async fn instantiate(
        &self,
        limits: &ConnectionLimits,
        observer: &Arc<dyn RequestObserver>,
    ) -> Result<LiveInstance, HandleError> {
        let mut store = Store::new(
            self.pre.engine(),
            InstanceState::new(
                limits.max_memory_bytes,
                Arc::clone(&self.env),
                Arc::clone(observer),
            ),
        );
        store.limiter(|state| &mut state.memory);
        let max_cpu = limits.max_cpu;
        store.epoch_deadline_callback(move |store| {
            let (used, running) = store.data().books.cpu.used_and_running();
            if used > max_cpu {
                return Err(CpuBudgetExceeded { budget: max_cpu }.into());
            }
            if used < HEAVY_AFTER {
                // A light guest that has only just been resumed goes on:
                // yielding at the first check after every tick cost each
                // busy connection a spurious wake-up, fiber switch and poll
                // per tick (0.42 per echo at 64 connections). One whose
                // poll has run for a while yields, so none holds the worker
                // for much more than a tick; a heavy one yields at every
                // tick, into the heavy lane. Guest code outside a metered
                // poll (none is known: `running` is then zero) yields.
                if !running.is_zero() && running < MIN_SLICE {
                    return Ok(UpdateDeadline::Continue(1));
                }
                return Ok(UpdateDeadline::Yield(1));
            }
            // A heavy guest runs its next slice on the heavy lane.
            Ok(UpdateDeadline::YieldCustom(
                1,
                store.data().lane.next_slice(),
            ))
        });
        // A component's start-up code (core start functions, `_initialize`)
        // is guest code: it runs under the same CPU budget, epoch
        // interruptions and lifetime as `handle`.
        store.set_epoch_deadline(1);
        let cpu = Arc::clone(&store.data().books.cpu);
        let lane = store.data().lane.clone();
        let instantiating = std::time::Instant::now();
        let world = match cpu.meter(self.pre.instantiate(&mut store), lane).await {
            Ok(world) => world,
            Err(err) => return Err(instantiation_failure(&err, store.data())),
        };
        observer.instantiated(instantiating.elapsed());
        Ok(LiveInstance {
            store,
            world,
            served: 0,
        })
    }

    /// A warm instance left by an earlier request, if one is idle.
    fn take_warm(&self) -> Option<LiveInstance> {
        self.warm.lock().ok()?.pop()
    }

    /// Keeps `instance` for a later request, unless enough are kept already
    /// or it has served its share.
    fn keep_warm(&self, instance: LiveInstance) {
        if instance.served >= MAX_REUSES {
            return;
        }
        if let Ok(mut warm) = self.warm.lock()
            && warm.len() < MAX_WARM_INSTANCES
        {
            warm.push(instance);
        }
    }
}

/// Whether a request gets a fresh instance or a warm, reused one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstanceChoice {
    /// A new store and instance, dropped when the request ends: nothing
    /// of one request is visible to the next.
    Fresh,
    /// An instance kept from an earlier request, when one is idle (else a
    /// fresh one, kept afterwards): its memory and globals persist between
    /// requests. Used for datagrams with `--reuse-datagram-instances`.
    Warm,
}

/// Idle warm instances a handler keeps at most. They hold pool slots that
/// no request holds a permit for, so the engine's pool has this many slots
/// more than `--max-connections` (see `app::serve`).
pub(crate) const MAX_WARM_INSTANCES: usize = 16;

/// How long a guest's poll must have run for an epoch tick to make it
/// yield: a long poll, after which the worker sends the replies it holds.
const MIN_SLICE: std::time::Duration = super::outbox::LONG_POLL;

/// Requests one warm instance serves before it is replaced by a fresh one.
/// It bounds what a long-lived instance can accumulate — guest memory up to
/// `--max-memory`, but also host-side state such as request handles a guest
/// never drops — at the cost of one instantiation per this many requests.
const MAX_REUSES: u64 = 10_000;

/// An instance and the store it lives in.
pub(super) struct LiveInstance {
    /// The store: the instance's memory, tables and host state.
    store: Store<InstanceState>,
    /// The instance's `handle` export.
    world: HandlerWorld,
    /// Requests it has served (more than one only when warm).
    served: u64,
}

/// An instance's `handle` export, in the contract version it was built for.
pub(super) enum HandlerWorld {
    Current(current::HandlerWorld),
    Previous(previous::HandlerWorld),
}

impl HandlerWorld {
    /// Calls `handle` with `request`.
    async fn call_handle(
        &self,
        store: &mut Store<InstanceState>,
        request: wasmtime::component::Resource<Request>,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Self::Current(world) => world.call_handle(store, request).await,
            Self::Previous(world) => world.call_handle(store, request).await,
        }
    }
}

impl HandlerPre {
    /// Instantiates the component in `store`.
    async fn instantiate(
        &self,
        store: &mut Store<InstanceState>,
    ) -> wasmtime::Result<HandlerWorld> {
        Ok(match self {
            Self::Current(pre) => HandlerWorld::Current(pre.instantiate_async(store).await?),
            Self::Previous(pre) => HandlerWorld::Previous(pre.instantiate_async(store).await?),
        })
    }
}

/// The most characters of a guest's error text that reach the log.
const MAX_ERROR_CHARS: usize = 512;

/// Runs `work` until `deadline` (the request's `--max-lifetime`), if any.
async fn within<F: std::future::Future>(
    deadline: Option<(tokio::time::Instant, std::time::Duration)>,
    work: F,
) -> Result<F::Output, HandleError> {
    let Some((deadline, lifetime)) = deadline else {
        return Ok(work.await);
    };
    tokio::time::timeout_at(deadline, work).await.map_err(|_| {
        HandleError::new(
            FailureCause::MaxLifetime,
            format!("request lasted longer than {lifetime:?} (--max-lifetime)"),
        )
    })
}

/// Why instantiation failed: the guest's start-up code trapped or ran out
/// of CPU (counted as such, `while instantiating`), or the host could not
/// create the instance (no pool slot, ...).
fn instantiation_failure(err: &wasmtime::Error, state: &InstanceState) -> HandleError {
    let guest_ran = err.downcast_ref::<CpuBudgetExceeded>().is_some()
        || err.downcast_ref::<wasmtime::Trap>().is_some();
    if !guest_ran {
        return instantiate_error(err);
    }
    let failure = classify_trap(err, state);
    HandleError::new(
        failure.cause,
        format!("while instantiating: {}", failure.message),
    )
}

/// The host could not create the instance (no pool slot, ...).
fn instantiate_error(err: &wasmtime::Error) -> HandleError {
    HandleError::new(
        FailureCause::Instantiate,
        format!("cannot instantiate handler: {}", one_line(err)),
    )
}

/// Names the cause of a trap; the guest's backtrace goes to the debug log,
/// as it runs to dozens of frames.
fn classify_trap(err: &wasmtime::Error, state: &InstanceState) -> HandleError {
    if let Some(backtrace) = err.downcast_ref::<wasmtime::WasmBacktrace>() {
        tracing::debug!(backtrace = %one_line(backtrace), "guest trapped");
    }
    if let Some(exceeded) = err.downcast_ref::<CpuBudgetExceeded>() {
        return HandleError::new(FailureCause::CpuBudget, format!("handler {exceeded}"));
    }
    let table_full = err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<wasmtime::component::ResourceTableError>(),
            Some(wasmtime::component::ResourceTableError::Full)
        )
    });
    if table_full {
        return HandleError::new(
            FailureCause::Trap,
            format!(
                "handler trapped: it held more than {MAX_HANDLES} host handles (pollables, streams) at once"
            ),
        );
    }
    let trap = err.downcast_ref::<wasmtime::Trap>();
    let message = match trap {
        Some(trap) => trap.to_string(),
        None => one_line(&err.root_cause()),
    };
    if trap == Some(&wasmtime::Trap::StackOverflow) {
        return HandleError::new(
            FailureCause::StackOverflow,
            format!("handler overflowed its stack: {message}"),
        );
    }
    if state.memory.refused() {
        return HandleError::new(
            FailureCause::OutOfMemory,
            format!("handler ran out of memory (--max-memory) and trapped: {message}"),
        );
    }
    HandleError::new(FailureCause::Trap, format!("handler trapped: {message}"))
}
