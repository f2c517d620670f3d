//! A handler component: loaded and checked once, then instantiated afresh for
//! every request.
//!
//! [`Handler::load`] reads the file, compiles it, links it against the host's
//! imports and checks its `handle` export, so that every problem shows at
//! start. The result is an `InstancePre`: per request, [`Handler::handle`]
//! only creates a `Store`, instantiates (cheap with the pooling allocator
//! and copy-on-write memory) and calls `handle`.

use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};

use sha2::Digest;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

use crate::bindings::{self, HandlerWorld, HandlerWorldPre, WORLD_NAME};
use crate::error::{LoadError, one_line};
use crate::limits::{ConnectionLimits, CpuBudgetExceeded};
use crate::metrics::ServiceMetrics;
use crate::request::Request;
use crate::state::{InstanceState, Settings};

/// A loaded, checked handler component, ready to serve requests.
pub struct Handler {
    /// The path it was loaded from, for messages.
    path: PathBuf,
    /// The file name, used as the handler's name in log lines.
    name: String,
    /// The component, compiled and linked once; each request instantiates it.
    pre: HandlerWorldPre<InstanceState>,
    /// The first 12 hex digits of the file's SHA-256, to tell versions apart
    /// in logs.
    hash: String,
    /// The operator's settings every instance can read.
    settings: Arc<Settings>,
    /// Idle instances kept for reuse (datagrams with
    /// `--reuse-datagram-instances`); dropped with this version.
    warm: Mutex<Vec<LiveInstance>>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why a request ended badly: the label in logs and in the failure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCause {
    /// The instance could not be created (for example no pool slot left).
    Instantiate,
    /// The guest trapped: a panic, `unreachable`, an out-of-bounds access...
    Trap,
    /// The guest tried to grow its memory past `--max-memory`.
    OutOfMemory,
    /// The guest used more CPU than `--max-cpu`.
    CpuBudget,
    /// The guest recursed past the wasm stack limit.
    StackOverflow,
    /// The client sent nothing for `--idle-timeout` and the handler gave up.
    IdleTimeout,
    /// The request lasted longer than `--max-lifetime`.
    MaxLifetime,
    /// The guest returned an error from `handle`.
    GuestError,
}

impl FailureCause {
    /// Every cause, in a fixed order (for counters).
    pub const ALL: [FailureCause; 8] = [
        FailureCause::Instantiate,
        FailureCause::Trap,
        FailureCause::OutOfMemory,
        FailureCause::CpuBudget,
        FailureCause::StackOverflow,
        FailureCause::IdleTimeout,
        FailureCause::MaxLifetime,
        FailureCause::GuestError,
    ];

    /// The cause's name in logs and metrics, e.g. `out_of_memory`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCause::Instantiate => "instantiate",
            FailureCause::Trap => "trap",
            FailureCause::OutOfMemory => "out_of_memory",
            FailureCause::CpuBudget => "cpu_budget",
            FailureCause::StackOverflow => "stack_overflow",
            FailureCause::IdleTimeout => "idle_timeout",
            FailureCause::MaxLifetime => "max_lifetime",
            FailureCause::GuestError => "guest_error",
        }
    }
}

impl std::fmt::Display for FailureCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one request ended badly. The connection is closed either way; other
/// requests are not affected.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandleError {
    /// The kind of failure.
    pub cause: FailureCause,
    /// What happened, on one line.
    pub message: String,
}

impl HandleError {
    fn new(cause: FailureCause, message: impl Into<String>) -> Self {
        Self {
            cause,
            message: message.into(),
        }
    }
}

/// The WebAssembly header: magic bytes, then a version and a layer. Layer 0 is
/// a core module, layer 1 a component.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
const CORE_MODULE_LAYER: [u8; 2] = [0, 0];

impl Handler {
    /// Loads the component at `path`, compiles it with `engine` and checks that
    /// it implements the `wasmserve:handler/handler` world.
    pub fn load(engine: &Engine, path: &Path, settings: Arc<Settings>) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound {
                path: path.to_owned(),
            },
            _ => LoadError::Read {
                path: path.to_owned(),
                cause: source,
            },
        })?;
        if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
            return Err(LoadError::NotWasm {
                path: path.to_owned(),
            });
        }
        if bytes[6..8] == CORE_MODULE_LAYER {
            return Err(LoadError::CoreModule {
                path: path.to_owned(),
            });
        }

        let component = Component::new(engine, &bytes).map_err(|err| LoadError::Compile {
            path: path.to_owned(),
            reason: one_line(&err),
        })?;
        let linker = host_linker(engine).map_err(|err| LoadError::Compile {
            path: path.to_owned(),
            reason: one_line(&err),
        })?;
        let instance_pre =
            linker
                .instantiate_pre(&component)
                .map_err(|err| LoadError::UnsupportedImport {
                    path: path.to_owned(),
                    reason: one_line(&err),
                    world: WORLD_NAME,
                })?;
        let pre = HandlerWorldPre::new(instance_pre).map_err(|_| LoadError::MissingExport {
            path: path.to_owned(),
            exports: export_names(engine, &component),
            world: WORLD_NAME,
        })?;

        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let digest = sha2::Sha256::digest(&bytes);
        let hash = digest
            .iter()
            .take(6)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Ok(Self {
            path: path.to_owned(),
            name,
            pre,
            hash,
            settings,
            warm: Mutex::new(Vec::new()),
        })
    }

    /// The handler's name for log lines and the `listening` line: its file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first 12 hex digits of the component file's SHA-256.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The operator's settings its instances read.
    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings)
    }

    /// The path the handler was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves one request under `limits`, in a fresh instance or, with
    /// [`InstanceChoice::Warm`], in one kept from an earlier request. A
    /// fresh instance, and a warm one whose guest trapped or ran out of
    /// time, is dropped with everything it allocated when this returns.
    pub async fn handle(
        &self,
        request: Request,
        choice: InstanceChoice,
        limits: &ConnectionLimits,
        metrics: &ServiceMetrics,
    ) -> Result<(), HandleError> {
        let warm = match choice {
            InstanceChoice::Warm => self.take_warm(),
            InstanceChoice::Fresh => None,
        };
        let mut instance = match warm {
            Some(instance) => instance,
            None => self.instantiate(limits, metrics).await?,
        };
        // A fresh instance's state is new already; a reused one starts over.
        if instance.served > 0 {
            instance.store.data_mut().begin_request();
        }
        instance.served += 1;
        instance.store.set_epoch_deadline(1);
        let request = instance
            .store
            .data_mut()
            .table
            .push(request)
            .map_err(|err| instantiate_error(err.into()))?;

        let cpu = Arc::clone(&instance.store.data().cpu);
        let call = cpu.meter(instance.world.call_handle(&mut instance.store, request));
        let outcome = match limits.max_lifetime {
            Some(lifetime) => match tokio::time::timeout(lifetime, call).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Err(HandleError::new(
                        FailureCause::MaxLifetime,
                        format!("request lasted longer than {lifetime:?} (--max-lifetime)"),
                    ));
                }
            },
            None => call.await,
        };
        let state = instance.store.data();
        let result = match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) if state.idle_timed_out => Err(HandleError::new(
                FailureCause::IdleTimeout,
                format!("client idle past --idle-timeout; handler returned an error: {message}"),
            )),
            Ok(Err(message)) => Err(HandleError::new(
                FailureCause::GuestError,
                format!("handler returned an error: {message}"),
            )),
            // A trapped instance is never used again.
            Err(err) => return Err(classify_trap(&err, state)),
        };
        if choice == InstanceChoice::Warm {
            self.keep_warm(instance);
        }
        result
    }

    /// Creates a fresh instance with its own store under `limits`.
    async fn instantiate(
        &self,
        limits: &ConnectionLimits,
        metrics: &ServiceMetrics,
    ) -> Result<LiveInstance, HandleError> {
        let mut store = Store::new(
            self.pre.engine(),
            InstanceState::new(
                limits.max_memory_bytes,
                Arc::clone(&self.settings),
                (metrics.bytes_in.clone(), metrics.bytes_out.clone()),
            ),
        );
        store.limiter(|state| &mut state.memory);
        let max_cpu = limits.max_cpu;
        store.epoch_deadline_callback(move |store| {
            if store.data().cpu.used() > max_cpu {
                return Err(CpuBudgetExceeded { budget: max_cpu }.into());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        let instantiating = std::time::Instant::now();
        let world = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(instantiate_error)?;
        metrics
            .instantiation
            .observe(instantiating.elapsed().as_secs_f64());
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
pub enum InstanceChoice {
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
/// more than `--max-connections` (see `cli.rs`).
pub const MAX_WARM_INSTANCES: usize = 16;

/// Requests one warm instance serves before it is replaced by a fresh one.
/// It bounds what a long-lived instance can accumulate — guest memory up to
/// `--max-memory`, but also host-side state such as request handles a guest
/// never drops — at the cost of one instantiation per this many requests.
const MAX_REUSES: u64 = 10_000;

/// An instance and the store it lives in.
struct LiveInstance {
    /// The store: the instance's memory, tables and host state.
    store: Store<InstanceState>,
    /// The instance's `handle` export.
    world: HandlerWorld,
    /// Requests it has served (more than one only when warm).
    served: u64,
}

fn instantiate_error(err: wasmtime::Error) -> HandleError {
    HandleError::new(
        FailureCause::Instantiate,
        format!("cannot instantiate handler: {}", one_line(&err)),
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

/// The imports every handler may use: the `wasmserve:handler/types`
/// interface and WASI (locked down per instance by [`InstanceState`]).
fn host_linker(engine: &Engine) -> wasmtime::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::add_to_linker::<InstanceState, HasSelf<InstanceState>>(&mut linker, |state| state)?;
    bindings::add_config_to_linker::<InstanceState, HasSelf<InstanceState>>(
        &mut linker,
        |state| state,
    )?;
    Ok(linker)
}

/// The names a component exports, for the "missing export" message.
fn export_names(engine: &Engine, component: &Component) -> String {
    let component_type = component.component_type();
    let names: Vec<&str> = component_type
        .exports(engine)
        .map(|(name, _)| name)
        .collect();
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}
