//! The services of one process, and reconfiguring them while they run.
//!
//! [`Supervisor::apply`] takes the wanted services (from the flags or the
//! config file, validated) and makes them so: new services start, removed
//! ones stop accepting and drain, changed ones restart on the listeners
//! they keep. A listening socket whose address is still wanted is handed
//! over, never closed and reopened, so no client is refused during a
//! reload; everything that can fail (loading handlers, resolving and
//! binding new addresses) is done before anything running is touched, so
//! a bad reload changes nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use wasmtime::Engine;

use super::reload;
use super::socket_plan::{SocketKey, SocketPlan, socket_key, socket_keys};
use super::spec::{Origin, ServiceSpec};
use super::start_up::{describe, in_service, load_tls, resolve_and_check};
use crate::metrics::Metrics;
use crate::net::{ListenSpec, Listener, TlsTerminator};
use crate::server::{DrainReport, RunningService, ServeConfig, start};
use crate::shared::{Backends, StateObserver};
use crate::shutdown::Shutdown;
use crate::wasm::{HandlerEnv, HandlerSlot, load_off_runtime};

/// One running service.
#[derive(Debug)]
struct Running {
    /// What it was started from, to tell what a reload changes.
    spec: ServiceSpec,
    /// Its handler.
    slot: Arc<HandlerSlot>,
    /// Its accept loops and drain task.
    service: RunningService,
    /// The spec each of its listeners was bound for, in the order the
    /// server was given them (a host name may have bound several).
    listener_specs: Vec<ListenSpec>,
    /// `tcp 127.0.0.1:41234`: what each listener is bound to, for the
    /// start-up summary.
    bound: Vec<String>,
    /// Its TLS, shared with its server (a reload swaps the certificate in
    /// place).
    tls: Option<Arc<TlsTerminator>>,
    /// Its file watcher (`watch = true`), dropped with the service.
    _watcher: Option<reload::Watch>,
}

/// Every service of the process.
#[derive(Debug)]
pub(crate) struct Supervisor {
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
    /// The state backends opened so far (buckets, channels), kept across
    /// reloads.
    backends: Arc<Backends>,
    /// `--user`/`--group`: the uid and gid to switch to once the first
    /// services' sockets are bound, before any of them serves.
    switch_to: Option<(u32, u32)>,
}

impl Supervisor {
    /// A supervisor with no service yet.
    pub(crate) fn new(
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
            backends: Arc::new(Backends::default()),
            switch_to: None,
        }
    }

    /// Makes the first [`Supervisor::apply`] switch to `user` (uid, gid)
    /// between binding and serving.
    pub(crate) fn switching_user(mut self, user: Option<(u32, u32)>) -> Self {
        self.switch_to = user;
        self
    }

    /// The settings and shared state `spec`'s instances get; opens its
    /// state backend at first use (off the runtime: a state file is opened
    /// from disk).
    async fn handler_env(&self, spec: &ServiceSpec) -> anyhow::Result<Arc<HandlerEnv>> {
        let (backends, owned) = (Arc::clone(&self.backends), spec.clone());
        let observer: Arc<dyn StateObserver> = self.metrics.service(&spec.name);
        // Opening a state file and resolving allow-listed names block.
        let (share, outbound) = tokio::task::spawn_blocking(move || {
            let share = backends
                .share_for(&owned.name, &owned.state, observer)
                .map_err(|err| format!("state {}: {err}", owned.state.backend))?;
            Ok::<_, String>((share, owned.outbound_policy()?))
        })
        .await
        .map_err(|err| anyhow::anyhow!("preparing the service failed: {err}"))?
        .map_err(|err| anyhow::anyhow!("{err}"))?;
        Ok(Arc::new(HandlerEnv {
            settings: spec.settings.clone(),
            share,
            outbound: Arc::new(outbound),
        }))
    }

    /// Makes the running services those of `wanted` (already validated, see
    /// [`super::spec::validate`]). Returns the `listening` lines of the
    /// sockets bound for it (none for a socket that was kept).
    pub(crate) async fn apply(
        &mut self,
        wanted: Vec<ServiceSpec>,
        origin: &Origin,
    ) -> anyhow::Result<Vec<String>> {
        // 1. Everything that can fail, before anything changes.
        let mut handlers = Vec::with_capacity(wanted.len());
        let mut terminators = Vec::with_capacity(wanted.len());
        for spec in &wanted {
            terminators.push(
                load_tls(spec.tls.clone())
                    .await
                    .map_err(|err| in_service(origin, &spec.name, err))?,
            );
            let reusable = self
                .services
                .get(&spec.name)
                .filter(|running| {
                    running.spec.handler == spec.handler
                        && running.spec.settings == spec.settings
                        && running.spec.state == spec.state
                        && running.spec.allow_connect == spec.allow_connect
                        && running.spec.max_outbound == spec.max_outbound
                        && running.spec.outbound_datagrams == spec.outbound_datagrams
                        && running.spec.connect_timeout == spec.connect_timeout
                })
                .map(|running| Arc::clone(&running.slot));
            let slot = match reusable {
                Some(slot) => slot,
                None => {
                    let env = self
                        .handler_env(spec)
                        .await
                        .map_err(|err| in_service(origin, &spec.name, err))?;
                    let handler = load_off_runtime(&self.engine, &spec.handler, env)
                        .await
                        .map_err(|err| in_service(origin, &spec.name, err))?;
                    Arc::new(HandlerSlot::new(self.engine.clone(), handler))
                }
            };
            handlers.push(slot);
        }
        resolve_and_check(&wanted, origin).await?;
        let running_keys: Vec<SocketKey> = self
            .services
            .values()
            .flat_map(|running| socket_keys(&running.spec))
            .collect();
        let wanted_keys: Vec<SocketKey> = wanted.iter().flat_map(socket_keys).collect();
        let plan = SocketPlan::new(&running_keys, &wanted_keys);
        let mut fresh: HashMap<SocketKey, Vec<Listener>> = HashMap::new();
        let mut lines = Vec::new();
        for spec in &wanted {
            for key in socket_keys(spec) {
                if !plan.bind.contains(&key) || fresh.contains_key(&key) {
                    continue;
                }
                let listeners = Listener::bind(&key.1, &spec.socket)
                    .await
                    .map_err(|err| in_service(origin, &spec.name, err))?;
                for listener in &listeners {
                    lines.push(self.listening_line(listener, spec));
                }
                fresh.insert(key, listeners);
            }
        }

        // Every socket is bound: drop root before anything serves.
        if let Some((uid, gid)) = self.switch_to.take() {
            crate::net::become_user(uid, gid).map_err(|err| {
                anyhow::anyhow!("--user: cannot switch to uid {uid}, gid {gid}: {err}")
            })?;
            tracing::info!(
                uid,
                gid,
                "switched user: every socket is bound, no handler has run"
            );
        }

        // 2. Stop what changed or went away, keeping its sockets.
        let mut kept: HashMap<SocketKey, Vec<Listener>> = HashMap::new();
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
            for (listen, listener) in running.listener_specs.iter().zip(listeners) {
                if let Some(listener) = listener {
                    let key = socket_key(&name, listen);
                    kept.entry(key).or_default().push(listener);
                }
            }
            tracing::info!(service = %name, "service stopped accepting (reconfigured or removed)");
            self.retired.push((name, report));
        }

        // 3. Start what is new or changed; re-read unchanged handlers.
        for ((spec, slot), tls) in wanted.into_iter().zip(handlers).zip(terminators) {
            if let Some(running) = self.services.get(&spec.name) {
                reload::reload_and_log(&slot, &self.metrics.service(&spec.name), "config").await;
                if let (Some(running), Some(fresh)) = (&running.tls, &tls) {
                    running.adopt(fresh);
                }
                continue;
            }
            let mut listeners = Vec::new();
            let mut listener_specs = Vec::new();
            for listen in &spec.listen {
                let key = socket_key(&spec.name, listen);
                let taken = kept
                    .remove(&key)
                    .or_else(|| fresh.remove(&key))
                    .unwrap_or_default();
                for listener in taken {
                    listener_specs.push(listen.clone());
                    listeners.push(listener);
                }
            }
            let bound = listeners.iter().map(ToString::to_string).collect();
            let metrics = self.metrics.service(&spec.name);
            let watcher = match spec.watch {
                true => Some(
                    reload::watch_file(Arc::clone(&slot), Arc::clone(&metrics)).map_err(|err| {
                        anyhow::anyhow!("cannot watch {}: {err}", spec.handler.display())
                    })?,
                ),
                false => None,
            };
            let handler = slot.current();
            tracing::info!(
                service = %spec.name,
                handler = handler.name(),
                version = handler.hash(),
                contract = handler.contract(),
                "service started"
            );
            let config = ServeConfig {
                max_connections: spec.max_connections,
                max_requests: self.max_requests,
                drain_timeout: self.drain_timeout,
                listen: spec.socket.clone(),
                limits: spec.limits,
                reuse_datagram_instances: spec.reuse_datagram_instances,
                metrics,
                max_per_source: spec.max_connections_per_source,
                access: spec.access.clone(),
                tls: tls.clone(),
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
                    listener_specs,
                    bound,
                    tls,
                    _watcher: watcher,
                },
            );
        }
        // Sockets no service wants any more (`plan.close`) are dropped,
        // and so closed, here.
        if !plan.close.is_empty() {
            let closed: Vec<String> = plan
                .close
                .iter()
                .map(|(_, spec)| spec.to_string())
                .collect();
            tracing::info!(closed = %closed.join(", "), "listeners closed");
        }
        Ok(lines)
    }

    /// Reloads every service's handler from its file (SIGHUP without a
    /// config file).
    pub(crate) async fn reload_handlers(&self, trigger: &'static str) {
        for (name, running) in &self.services {
            reload::reload_and_log(&running.slot, &self.metrics.service(name), trigger).await;
            if let Some(tls) = &running.tls {
                match load_tls(Some(tls.spec().clone())).await {
                    Ok(Some(fresh)) => {
                        tls.adopt(&fresh);
                        tracing::info!(service = %name, "TLS certificate and key re-read");
                    }
                    Ok(None) => {}
                    Err(err) => tracing::error!(
                        service = %name,
                        "TLS reload failed, keeping the certificate in use: {err}"
                    ),
                }
            }
        }
    }

    /// One line per running service: its handler, where it is bound (the
    /// real ports, port 0 resolved) and its limits.
    pub(crate) fn summary(&self) -> Vec<String> {
        self.services
            .values()
            .map(|running| describe(&running.spec, &running.bound))
            .collect()
    }

    fn listening_line(&self, listener: &Listener, spec: &ServiceSpec) -> String {
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
    pub(crate) async fn finish(mut self) {
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
