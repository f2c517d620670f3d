//! A handler component: loaded and checked once, then instantiated afresh for
//! every request.
//!
//! [`Handler::load`] reads the file, compiles it, links it against the host's
//! imports and checks its `handle` export, so that every problem shows at
//! start. The result is an `InstancePre`: per request, `Handler::handle`
//! (in `instance.rs`) only creates a `Store`, instantiates (cheap with the
//! pooling allocator and copy-on-write memory) and calls `handle`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::Digest;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, Linker};

use super::bindings::{current, previous};
use super::instance::LiveInstance;
use super::optional_imports::{contract_version, newer_contract, optional_imports};
use super::state::{HandlerEnv, InstanceState};
use crate::error::{LoadError, one_line};

/// A loaded, checked handler component, ready to serve requests.
pub(crate) struct Handler {
    /// The path it was loaded from, for messages.
    path: PathBuf,
    /// The file name, used as the handler's name in log lines.
    name: String,
    /// The component, compiled and linked once; each request instantiates it.
    pub(super) pre: HandlerPre,
    /// The first 12 hex digits of the file's SHA-256, to tell versions apart
    /// in logs.
    hash: String,
    /// The contract version it imports the request type from.
    contract: String,
    /// The optional parts of the host it imports (`keyvalue`, `channels`,
    /// `sockets`, `tls`), for `wasmserve check`.
    optional_imports: Vec<&'static str>,
    /// The operator's settings and the service's shared state, given to
    /// every instance.
    pub(super) env: Arc<HandlerEnv>,
    /// Idle instances kept for reuse (datagrams with
    /// `--reuse-datagram-instances`); dropped with this version.
    pub(super) warm: Mutex<Vec<LiveInstance>>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The WebAssembly header: magic bytes, then a version and a layer. Layer 0 is
/// a core module, layer 1 a component.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
const CORE_MODULE_LAYER: [u8; 2] = [0, 0];

impl Handler {
    /// Loads the component at `path`, compiles it with `engine` and checks that
    /// it implements the `wasmserve:handler/handler` world.
    pub(crate) fn load(
        engine: &Engine,
        path: &Path,
        env: Arc<HandlerEnv>,
    ) -> Result<Self, LoadError> {
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
        prepare_memory_images(&component, path);
        if let Some((import, needs)) = newer_contract(engine, &component, current::VERSION) {
            return Err(LoadError::NewerContract {
                path: path.to_owned(),
                import,
                needs,
                serves: current::VERSION,
            });
        }
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
                    world: current::WORLD_NAME,
                })?;
        let contract = contract_version(engine, &component);
        let pre = HandlerPre::new(contract.as_deref(), instance_pre).ok_or_else(|| {
            LoadError::MissingExport {
                path: path.to_owned(),
                exports: export_names(engine, &component),
                world: current::WORLD_NAME,
            }
        })?;

        let optional_imports = optional_imports(engine, &component);
        let contract = contract.unwrap_or_else(|| {
            match pre {
                HandlerPre::Current(_) => current::VERSION,
                HandlerPre::Previous(_) => "0.1",
            }
            .to_owned()
        });
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
            contract,
            optional_imports,
            env,
            warm: Mutex::new(Vec::new()),
        })
    }

    /// The handler's name for log lines and the `listening` line: its file name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The contract version the component was built against, for logs:
    /// `0.2.1`, `0.2.0` or `0.1.1`.
    pub(crate) fn contract(&self) -> &str {
        &self.contract
    }

    /// The optional parts of the host the handler imports, in a fixed
    /// order: `keyvalue`, `channels`, `sockets`, `tls`.
    pub(crate) fn optional_imports(&self) -> &[&'static str] {
        &self.optional_imports
    }

    /// The first 12 hex digits of the component file's SHA-256.
    pub(crate) fn hash(&self) -> &str {
        &self.hash
    }

    /// The settings and shared state its instances get.
    pub(crate) fn env(&self) -> Arc<HandlerEnv> {
        Arc::clone(&self.env)
    }

    /// The path the handler was loaded from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The same handler, known by the registry `reference` it was pulled
    /// from (at manifest `digest`) rather than by its cache file.
    pub(crate) fn pulled_from(mut self, reference: PathBuf, digest: &str) -> Self {
        self.name = reference
            .to_str()
            .and_then(|text| text.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        tracing::debug!(reference = %reference.display(), digest, "handler pulled");
        self.path = reference;
        self
    }
}

/// A handler linked and checked against the contract version it was built
/// for: the current one, or the previous one, still served unchanged.
pub(super) enum HandlerPre {
    /// Built against `wasmserve:handler@0.2.x`.
    Current(current::HandlerWorldPre<InstanceState>),
    /// Built against `wasmserve:handler@0.1.x`.
    Previous(previous::HandlerWorldPre<InstanceState>),
}

impl HandlerPre {
    /// The component's `handle` export, in the version of the contract
    /// whose interfaces it imports; `None` without such an export.
    ///
    /// Both versions' `handle` have the same type (the same host `request`
    /// resource), so the export alone cannot tell them apart: the version
    /// of the `types` interface it imports (`contract`) does.
    fn new(
        contract: Option<&str>,
        instance_pre: wasmtime::component::InstancePre<InstanceState>,
    ) -> Option<Self> {
        if contract.is_some_and(|version| version.starts_with(previous::VERSION_PREFIX)) {
            previous::HandlerWorldPre::new(instance_pre)
                .ok()
                .map(Self::Previous)
        } else {
            current::HandlerWorldPre::new(instance_pre)
                .ok()
                .map(Self::Current)
        }
    }

    pub(super) fn engine(&self) -> &Engine {
        match self {
            Self::Current(pre) => pre.engine(),
            Self::Previous(pre) => pre.engine(),
        }
    }
}

/// The imports every handler may use: both contract versions'
/// `wasmserve:handler` interfaces and WASI (locked down per instance by
/// [`InstanceState`]).
fn host_linker(engine: &Engine) -> wasmtime::Result<Linker<InstanceState>> {
    type Data = HasSelf<InstanceState>;
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    super::upstream::link_counted_connect(&mut linker)?;
    super::connect_deadline::link_connect_deadlines(&mut linker)?;
    super::socket_account::link_socket_account(&mut linker)?;
    current::add_to_linker::<InstanceState, Data>(&mut linker, |state| state)?;
    current::add_config_to_linker::<InstanceState, Data>(&mut linker, |state| state)?;
    previous::add_to_linker::<InstanceState, Data>(&mut linker, |state| state)?;
    previous::add_config_to_linker::<InstanceState, Data>(&mut linker, |state| state)?;
    current::keyvalue::store::add_to_linker::<InstanceState, Data>(&mut linker, |state| state)?;
    current::keyvalue::atomics::add_to_linker::<InstanceState, Data>(&mut linker, |state| state)?;
    current::keyvalue::batch::add_to_linker::<InstanceState, Data>(&mut linker, |state| state)?;
    current::keyspace::add_to_linker::<InstanceState, Data>(&mut linker, |state| state)?;
    current::channels::add_to_linker::<InstanceState, Data>(&mut linker, |state| state)?;
    super::write::link_bounded_writes(&mut linker)?;
    super::random_bytes::link_random_bytes(&mut linker)?;
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

/// Makes the copy-on-write images of `component`'s memories now (this runs
/// off the runtime) rather than in the first request's instantiation, whose
/// CPU budget they would spend: a 13 MB JavaScript image took over 100 ms
/// there on a loaded machine. Each image is a sealed memfd, and the kernel
/// refuses the seal while pages just written still hold extra references
/// (seen on a loaded machine; most likely another core's page batches):
/// that passes, so the making is tried again a few times; if it still
/// fails, the first request makes the images (and says why if it cannot).
fn prepare_memory_images(component: &Component, path: &Path) {
    const TRIES: u32 = 5;
    let mut pause = std::time::Duration::from_millis(10);
    for tried in 1..=TRIES {
        match component.initialize_copy_on_write_image() {
            Ok(()) => return,
            Err(err) if tried == TRIES => {
                tracing::warn!(
                    handler = %path.display(),
                    error = %one_line(&err),
                    "the handler's memory images are left to its first request"
                );
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause *= 2;
            }
        }
    }
}
