//! Hot swap: replacing the handler while the server runs, with no connection
//! refused or cut.
//!
//! The listeners read the current handler from a [`HandlerSlot`] once per
//! request, so a request runs start to end on one version. A reload compiles
//! the new file off the accept path (on the blocking pool); only once it is
//! ready does it replace the old one, which is dropped when its last request
//! ends. A reload that fails keeps the old handler serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use wasmtime::Engine;

use super::component::Handler;
use super::function_cache::FunctionCacheCounts;
use super::state::HandlerEnv;
use crate::error::LoadError;

/// The handler new requests are served with, replaceable at run time.
#[derive(Debug)]
pub(crate) struct HandlerSlot {
    /// The current handler; requests clone the `Arc` when they start.
    current: RwLock<Arc<Handler>>,
    /// The engine new versions are compiled with.
    engine: Engine,
    /// Serialises reloads, so two triggers cannot race.
    reloading: tokio::sync::Mutex<()>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReloadOutcome {
    /// A new version (by content hash) now serves new requests.
    Swapped {
        /// The previous version's hash.
        from: String,
        /// The new version's hash.
        to: String,
    },
    /// The file has the same content as the version serving.
    Unchanged,
}

impl HandlerSlot {
    /// A slot serving `handler`, whose reloads compile with `engine`.
    pub(crate) fn new(engine: Engine, handler: Handler) -> Self {
        Self {
            current: RwLock::new(Arc::new(handler)),
            engine,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The handler a request starting now is served with.
    pub(crate) fn current(&self) -> Arc<Handler> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Loads the handler's file again and, if it loads, swaps it in.
    pub(crate) async fn reload(&self) -> Result<ReloadOutcome, LoadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.current();
        let loaded = load_off_runtime(&self.engine, old.path(), old.env()).await?;
        if loaded.hash() == old.hash() {
            return Ok(ReloadOutcome::Unchanged);
        }
        let outcome = ReloadOutcome::Swapped {
            from: old.hash().to_owned(),
            to: loaded.hash().to_owned(),
        };
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(loaded),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(loaded),
        }
        Ok(outcome)
    }
}

/// How long loading a handler may take before the log says it is being
/// compiled (a compile-cache hit takes milliseconds).
const COMPILE_NOTICE_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// Loads (reads, compiles, checks) a handler on tokio's blocking pool:
/// compiling takes from milliseconds to seconds, and must not hold up the
/// runtime's workers, which serve every connection.
///
/// An `oci://` reference is resolved first (`registry`): the component is
/// loaded from the cache, and the handler keeps the reference, so that a
/// reload asks the registry again.
pub(crate) async fn load_off_runtime(
    engine: &Engine,
    path: &Path,
    env: Arc<HandlerEnv>,
) -> Result<Handler, LoadError> {
    let engine = engine.clone();
    let (file, digest) = match crate::registry::OciRef::from_path(path) {
        None => (path.to_owned(), None),
        Some(reference) => {
            let registry_error = |problem: String| LoadError::Registry {
                reference: path.display().to_string(),
                problem,
            };
            let reference = reference.map_err(registry_error)?;
            let pulled = crate::registry::fetch(&reference)
                .await
                .map_err(|err| registry_error(err.to_string()))?;
            (pulled.file, Some(pulled.digest))
        }
    };
    let source: PathBuf = path.to_owned();
    let name = file.display().to_string();
    let started = std::time::Instant::now();
    let functions_before = FunctionCacheCounts::now();
    let mut compiling = tokio::task::spawn_blocking(move || Handler::load(&engine, &file, env));
    // A cached handler loads in milliseconds; a first compile (a Python
    // handler: several seconds) says so rather than leave a silent pause,
    // and says when it is done what the function cache saved.
    let compiled = tokio::select! {
        compiled = &mut compiling => compiled,
        () = tokio::time::sleep(COMPILE_NOTICE_AFTER) => {
            tracing::info!("compiling {name} (first start; cached afterwards)");
            let compiled = compiling.await;
            if matches!(compiled, Ok(Ok(_))) {
                let seconds = started.elapsed().as_secs_f64();
                let functions = FunctionCacheCounts::now().since(functions_before);
                match functions.lookups {
                    0 => tracing::info!("compiled {name} in {seconds:.1} s"),
                    lookups => tracing::info!(
                        "compiled {name} in {seconds:.1} s ({} of {lookups} functions from the function cache)",
                        functions.hits,
                    ),
                }
            }
            compiled
        }
    };
    let loaded = compiled.map_err(|err| LoadError::Compile {
        path: path.to_owned(),
        reason: format!("the compile task failed: {err}"),
    })??;
    Ok(match digest {
        Some(digest) => loaded.pulled_from(source, &digest),
        None => loaded,
    })
}
