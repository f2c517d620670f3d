//! A handler component: loaded and checked once, then instantiated afresh for
//! every request.
//!
//! [`Handler::load`] reads the file, compiles it, links it against the host's
//! imports and checks its `handle` export, so that every problem shows at
//! start. The result is an `InstancePre`: per request, [`Handler::handle`]
//! only creates a `Store`, instantiates (cheap with the pooling allocator
//! and copy-on-write memory) and calls `handle`.

use std::path::{Path, PathBuf};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::bindings::{self, HandlerWorldPre, WORLD_NAME};
use crate::error::{LoadError, one_line};
use crate::request::Request;
use crate::state::InstanceState;

/// A loaded, checked handler component, ready to serve requests.
pub struct Handler {
    /// The path it was loaded from, for messages.
    path: PathBuf,
    /// The file name, used as the handler's name in log lines.
    name: String,
    /// The component, compiled and linked once; each request instantiates it.
    pre: HandlerWorldPre<InstanceState>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How one request ended badly. The connection is closed either way; other
/// requests are not affected.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The instance could not be created (for example no pool slot left).
    #[error("cannot instantiate handler: {0}")]
    Instantiate(String),
    /// The guest trapped: a panic, an out-of-bounds access, `unreachable`...
    #[error("handler trapped: {0}")]
    Trap(String),
    /// The guest returned an error from `handle`.
    #[error("handler returned an error: {0}")]
    Guest(String),
}

/// The WebAssembly header: magic bytes, then a version and a layer. Layer 0 is
/// a core module, layer 1 a component.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
const CORE_MODULE_LAYER: [u8; 2] = [0, 0];

impl Handler {
    /// Loads the component at `path`, compiles it with `engine` and checks that
    /// it implements the `wasmserve:handler/handler` world.
    pub fn load(engine: &Engine, path: &Path) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => LoadError::NotFound {
                path: path.to_owned(),
            },
            _ => LoadError::Read {
                path: path.to_owned(),
                source,
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
        Ok(Self {
            path: path.to_owned(),
            name,
            pre,
        })
    }

    /// The handler's name for log lines and the `listening` line: its file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path the handler was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves one request in a fresh instance; the instance and everything it
    /// allocated are dropped when this returns.
    pub async fn handle(&self, request: Request) -> Result<(), HandleError> {
        let mut store = Store::new(self.pre.engine(), InstanceState::new());
        let request = store
            .data_mut()
            .table
            .push(request)
            .map_err(|err| HandleError::Instantiate(one_line(&err)))?;
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|err| HandleError::Instantiate(one_line(&err)))?;
        match instance.call_handle(&mut store, request).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(HandleError::Guest(message)),
            Err(trap) => Err(HandleError::Trap(trap_message(&trap))),
        }
    }
}

/// The short cause of a trap (`wasm trap: wasm \`unreachable\` instruction
/// executed`); the guest's backtrace goes to the debug log instead, as it
/// runs to dozens of frames.
fn trap_message(err: &wasmtime::Error) -> String {
    if let Some(backtrace) = err.downcast_ref::<wasmtime::WasmBacktrace>() {
        tracing::debug!("guest backtrace:\n{backtrace}");
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => one_line(&err.root_cause()),
    }
}

/// The imports every handler may use: the `wasmserve:handler/types`
/// interface and WASI (locked down per instance by [`InstanceState`]).
fn host_linker(engine: &Engine) -> wasmtime::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::add_to_linker::<InstanceState, HasSelf<InstanceState>>(&mut linker, |state| state)?;
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
