//! Reloading a service's handler (SIGHUP, `--watch`, a config reload): the
//! swap itself is the wasm layer's ([`HandlerSlot::reload`]); this logs it
//! and counts it in the service's metrics.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::one_line;
use crate::metrics::ServiceMetrics;
use crate::wasm::{HandlerSlot, ReloadOutcome};

/// After a file event, wait this long for more (an editor's save is often a
/// write, a rename and a chmod) before reloading once.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// Reloads and logs the result: one line for a swap, one error line for a
/// failure (the old handler keeps serving).
pub(crate) async fn reload_and_log(
    slot: &HandlerSlot,
    metrics: &ServiceMetrics,
    trigger: &'static str,
) {
    let name = slot.current().name().to_owned();
    match slot.reload().await {
        Ok(ReloadOutcome::Swapped { from, to }) => {
            metrics.reload(true);
            tracing::info!(handler = %name, trigger, from, to, "handler reloaded");
        }
        Ok(ReloadOutcome::Unchanged) => {
            tracing::debug!(handler = %name, trigger, "handler unchanged; not reloaded");
        }
        Err(err) => {
            metrics.reload(false);
            tracing::error!(
                handler = %name,
                trigger,
                cause = %one_line(&err),
                "handler reload failed; the previous handler keeps serving"
            );
        }
    }
}

/// How often `--watch` asks the registry what an `oci://` tag points to.
pub(crate) const REGISTRY_POLL: Duration = Duration::from_secs(30);

/// What keeps `--watch` going; dropping it stops it.
#[derive(Debug)]
pub(crate) enum Watch {
    /// File events on the handler's folder.
    File(
        #[expect(dead_code, reason = "held only for its Drop, which stops the events")]
        notify::RecommendedWatcher,
    ),
    /// A task asking the registry every [`REGISTRY_POLL`].
    Registry(tokio::task::JoinHandle<()>),
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Watch::Registry(task) = self {
            task.abort();
        }
    }
}

/// Reloads the handler whenever its file changes (`--watch`), or, for an
/// `oci://` handler, whenever its tag points to another digest (asked every
/// [`REGISTRY_POLL`]). The returned watch must be kept alive.
pub(crate) fn watch_file(
    slot: Arc<HandlerSlot>,
    metrics: Arc<ServiceMetrics>,
) -> Result<Watch, notify::Error> {
    use notify::{EventKind, RecursiveMode, Watcher};

    let handler = slot.current();
    if crate::registry::is_oci(handler.path()) {
        return Ok(Watch::Registry(tokio::spawn(async move {
            loop {
                tokio::time::sleep(REGISTRY_POLL).await;
                reload_and_log(&slot, &metrics, "watch").await;
            }
        })));
    }
    let path = handler.path();
    // Watch the directory: editors and `cp` often replace the file (a new
    // inode), which a watch on the file itself would miss.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|name| name.to_owned());
    // Events only wake the reload task, which drains them all at once: a
    // queue of one is enough (a full queue means a reload is pending).
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
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
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(WATCH_DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            reload_and_log(&slot, &metrics, "watch").await;
        }
    });
    Ok(Watch::File(watcher))
}
