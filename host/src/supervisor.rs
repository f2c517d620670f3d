//! The services of one process, and reconfiguring them while they run.
//!
//! [`Supervisor::apply`] takes the wanted services (from the flags or the
//! config file) and makes them so: new services start, removed ones stop
//! accepting and drain, changed ones restart on the listeners they keep.
//! A listening socket whose address is still wanted is handed over, never
//! closed and reopened, so no client is refused during a reload; everything
//! that can fail (loading handlers, binding new addresses) is done before
//! anything running is touched, so a bad reload changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use wasmtime::Engine;

use crate::config::Service;
use crate::handler::Handler;
use crate::listener::{ListenSpec, Listener};
use crate::metrics::Metrics;
use crate::reload::{self, HandlerSlot};
use crate::server::{DrainReport, RunningService, ServeConfig, start};
use crate::shutdown::Shutdown;

/// One running service.
#[derive(Debug)]
struct Running {
    /// What it was started from, to tell what a reload changes.
    spec: Service,
    /// Its handler.
    slot: Arc<HandlerSlot>,
    /// Its accept loops and drain task.
    service: RunningService,
    /// Its file watcher (`watch = true`), dropped with the service.
    _watcher: Option<notify::RecommendedWatcher>,
}

/// Every service of the process.
#[derive(Debug)]
pub struct Supervisor {
    /// Compiles every handler.
    engine: Engine,
    /// The process's stop signals; each service gets a child of them.
    shutdown: Shutdown,
    /// `--max-requests`, for the one-service command line.
    max_requests: Option<u64>,
    /// `--drain-timeout`.
    drain_timeout: Duration,
    /// Whether `listening` lines name the service (config-file mode).
    name_services: bool,
    /// The running services, by name.
    services: BTreeMap<String, Running>,
    /// Services stopped by a reload, still draining.
    retired: Vec<(String, JoinHandle<DrainReport>)>,
    /// Every service's metrics.
    metrics: Arc<Metrics>,
}

impl Supervisor {
    /// A supervisor with no service yet.
    pub fn new(
        engine: Engine,
        shutdown: Shutdown,
        max_requests: Option<u64>,
        drain_timeout: Duration,
        name_services: bool,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            engine,
            shutdown,
            max_requests,
            drain_timeout,
            name_services,
            services: BTreeMap::new(),
            retired: Vec::new(),
            metrics,
        }
    }

    /// Makes the running services those of `wanted`. Returns the
    /// `listening` lines of the sockets bound for it (none for a socket
    /// that was kept).
    pub async fn apply(&mut self, wanted: Vec<Service>) -> anyhow::Result<Vec<String>> {
        // 1. Everything that can fail, before anything changes.
        let mut handlers = Vec::with_capacity(wanted.len());
        for spec in &wanted {
            let reusable = self
                .services
                .get(&spec.name)
                .filter(|running| {
                    running.spec.handler == spec.handler && running.spec.settings == spec.settings
                })
                .map(|running| Arc::clone(&running.slot));
            let slot = match reusable {
                Some(slot) => slot,
                None => {
                    let handler = Handler::load(
                        &self.engine,
                        &spec.handler,
                        Arc::new(spec.settings.clone()),
                    )?;
                    Arc::new(
                        HandlerSlot::new(self.engine.clone(), handler)
                            .with_metrics(self.metrics.service(&spec.name)),
                    )
                }
            };
            handlers.push(slot);
        }
        let kept_specs: Vec<&ListenSpec> = self
            .services
            .values()
            .flat_map(|running| &running.spec.listen)
            .collect();
        let mut fresh: HashMap<ListenSpec, Listener> = HashMap::new();
        let mut lines = Vec::new();
        for spec in &wanted {
            for listen in &spec.listen {
                if kept_specs.contains(&listen) || fresh.contains_key(listen) {
                    continue;
                }
                let listener = Listener::bind(listen, &spec.listen_options).await?;
                lines.push(self.listening_line(&listener, spec));
                fresh.insert(listen.clone(), listener);
            }
        }

        // 2. Stop what changed or went away, keeping its sockets.
        let mut kept: HashMap<ListenSpec, Listener> = HashMap::new();
        let names: Vec<String> = self.services.keys().cloned().collect();
        for name in names {
            let unchanged = wanted.iter().any(|spec| {
                self.services
                    .get(&name)
                    .is_some_and(|running| &running.spec == spec)
            });
            if unchanged {
                continue;
            }
            let Some(running) = self.services.remove(&name) else {
                continue;
            };
            let (listeners, report) = running.service.retire().await;
            for (listen, listener) in running.spec.listen.iter().zip(listeners) {
                kept.insert(listen.clone(), listener);
            }
            tracing::info!(service = %name, "service stopped accepting (reconfigured or removed)");
            self.retired.push((name, report));
        }

        // 3. Start what is new or changed; re-read unchanged handlers.
        for (spec, slot) in wanted.into_iter().zip(handlers) {
            if self.services.contains_key(&spec.name) {
                slot.reload_and_log("config").await;
                continue;
            }
            let listeners = spec
                .listen
                .iter()
                .filter_map(|listen| kept.remove(listen).or_else(|| fresh.remove(listen)))
                .collect();
            let watcher = match spec.watch {
                true => Some(reload::watch_file(Arc::clone(&slot)).map_err(|err| {
                    anyhow::anyhow!("cannot watch {}: {err}", spec.handler.display())
                })?),
                false => None,
            };
            let handler = slot.current();
            tracing::info!(
                service = %spec.name,
                handler = handler.name(),
                version = handler.hash(),
                "service started"
            );
            let config = ServeConfig {
                max_connections: spec.max_connections,
                max_requests: self.max_requests,
                drain_timeout: self.drain_timeout,
                listen: spec.listen_options.clone(),
                limits: spec.limits,
                reuse_datagram_instances: spec.reuse_datagram_instances,
                metrics: self.metrics.service(&spec.name),
            };
            // With --max-requests (one service), the service's stop is the
            // process's stop; otherwise each service can stop on its own.
            let shutdown = match self.max_requests {
                Some(_) => self.shutdown.clone(),
                None => self.shutdown.child(),
            };
            let service = start(listeners, Arc::clone(&slot), config, shutdown);
            self.services.insert(
                spec.name.clone(),
                Running {
                    spec,
                    slot,
                    service,
                    _watcher: watcher,
                },
            );
        }
        // Sockets no service wants any more are dropped (closed) here.
        Ok(lines)
    }

    /// Reloads every service's handler from its file (SIGHUP without a
    /// config file).
    pub async fn reload_handlers(&self, trigger: &'static str) {
        for running in self.services.values() {
            running.slot.reload_and_log(trigger).await;
        }
    }

    fn listening_line(&self, listener: &Listener, spec: &Service) -> String {
        let handler = spec
            .handler
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let line = listener.listening_line(&handler);
        match self.name_services {
            true => format!("{line} service={}", spec.name),
            false => line,
        }
    }

    /// Waits for every service to stop and drain (after a stop signal, or
    /// once `--max-requests` were served), logging each one's report.
    pub async fn finish(mut self) {
        let running = std::mem::take(&mut self.services);
        let mut pending: Vec<(String, JoinHandle<DrainReport>)> = std::mem::take(&mut self.retired);
        for (name, running) in running {
            let report = tokio::spawn(running.service.finish());
            pending.push((name, report));
        }
        for (service, report) in pending {
            let report = report.await.unwrap_or_default();
            tracing::info!(
                service,
                served = report.served,
                in_flight = report.in_flight,
                drained = report.in_flight as u64 - report.cut,
                cut = report.cut,
                failures = %report.failure_summary(),
                "stopped"
            );
        }
    }
}
