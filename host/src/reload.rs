//! Hot swap: replacing the handler while the server runs, with no connection
//! refused or cut.
//!
//! The listeners read the current handler from a [`HandlerSlot`] once per
//! request, so a request runs start to end on one version. A reload compiles
//! the new file off the accept path (on the blocking pool); only once it is
//! ready does it replace the old one, which is dropped when its last request
//! ends. A reload that fails keeps the old handler serving.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use wasmtime::Engine;

use crate::error::{LoadError, one_line};
use crate::handler::Handler;
use crate::metrics::ServiceMetrics;

/// After a file event, wait this long for more (an editor's save is often a
/// write, a rename and a chmod) before reloading once.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// The handler new requests are served with, replaceable at run time.
#[derive(Debug)]
pub struct HandlerSlot {
    /// The current handler; requests clone the `Arc` when they start.
    current: RwLock<Arc<Handler>>,
    /// The engine new versions are compiled with.
    engine: Engine,
    /// Serialises reloads, so two triggers cannot race.
    reloading: tokio::sync::Mutex<()>,
    /// Counts reloads, when the service has metrics.
    metrics: Option<Arc<ServiceMetrics>>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
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
    pub fn new(engine: Engine, handler: Handler) -> Self {
        Self {
            current: RwLock::new(Arc::new(handler)),
            engine,
            reloading: tokio::sync::Mutex::new(()),
            metrics: None,
        }
    }

    /// Counts this slot's reloads in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<ServiceMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count_reload(&self, ok: bool) {
        if let Some(metrics) = &self.metrics {
            metrics.reload(ok);
        }
    }

    /// The handler a request starting now is served with.
    pub fn current(&self) -> Arc<Handler> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Loads the handler's file again and, if it loads, swaps it in.
    pub async fn reload(&self) -> Result<ReloadOutcome, LoadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.current();
        let engine = self.engine.clone();
        let path: PathBuf = old.path().to_owned();
        let settings = old.settings();
        let loaded = tokio::task::spawn_blocking(move || Handler::load(&engine, &path, settings))
            .await
            .map_err(|err| LoadError::Compile {
                path: old.path().to_owned(),
                reason: format!("the compile task failed: {err}"),
            })??;
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

    /// Reloads and logs the result: one line for a swap, one error line for
    /// a failure (the old handler keeps serving).
    pub async fn reload_and_log(&self, trigger: &'static str) {
        let name = self.current().name().to_owned();
        match self.reload().await {
            Ok(ReloadOutcome::Swapped { from, to }) => {
                self.count_reload(true);
                tracing::info!(handler = %name, trigger, from, to, "handler reloaded");
            }
            Ok(ReloadOutcome::Unchanged) => {
                tracing::debug!(handler = %name, trigger, "handler unchanged; not reloaded");
            }
            Err(err) => {
                self.count_reload(false);
                tracing::error!(
                    handler = %name,
                    trigger,
                    cause = %one_line(&err),
                    "handler reload failed; the previous handler keeps serving"
                );
            }
        }
    }
}

/// Reloads the handler whenever its file changes (`--watch`). The returned
/// watcher must be kept alive.
pub fn watch_file(slot: Arc<HandlerSlot>) -> Result<notify::RecommendedWatcher, notify::Error> {
    use notify::{EventKind, RecursiveMode, Watcher};

    let handler = slot.current();
    let path = handler.path();
    // Watch the directory: editors and `cp` often replace the file (a new
    // inode), which a watch on the file itself would miss.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|name| name.to_owned());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let relevant = matches!(
            event.kind,
            EventKind::Create(_)
                | EventKind::Modify(notify::event::ModifyKind::Data(_))
                | EventKind::Modify(notify::event::ModifyKind::Name(_))
                | EventKind::Modify(notify::event::ModifyKind::Any)
        );
        let ours = event
            .paths
            .iter()
            .any(|changed| changed.file_name() == file_name.as_deref());
        if relevant && ours {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(WATCH_DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            slot.reload_and_log("watch").await;
        }
    });
    Ok(watcher)
}
