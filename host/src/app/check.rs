//! `wasmserve check`: everything serving would check — the config file or
//! flags, the validator, every handler (compiled, world checked), every
//! address (resolved, not bound) — with every problem listed, and `ok`
//! only for a service that has none.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{ServiceArgs, ServiceSource, usage_error};
use crate::error::one_line;
use crate::net::{ListenSpec, systemd_fds};
use crate::service::{self, Origin, ServiceSpec, validate_resolved, validate_with};
use crate::shared::ServiceShare;
use crate::wasm::{
    EngineLimits, Handler, HandlerEnv, OutboundPolicy, build_engine, load_off_runtime,
};

/// Checks what `args` describe; prints `ok: ...` per sound service and
/// `error: ...` per problem; fails if there is any problem. Handlers are
/// compiled through the compile cache in `cache_dir` (as serving does), so
/// a second check, or the server started after it, skips compiling them.
pub(super) async fn run(args: &ServiceArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (services, origin) = match args.source(&systemd_fds()?) {
        Err(_) if args.handler.is_none() && args.config.is_none() => usage_error(
            "give --config FILE or --handler PATH (with the flags you would serve with)",
        ),
        Err(message) => usage_error(&message),
        Ok(ServiceSource::Flags(spec)) => (vec![*spec], Origin::Flags),
        Ok(ServiceSource::File(path)) => (service::load_config(&path)?, Origin::File(path)),
    };
    validate_with(&services, &origin, origin != Origin::Flags)?;
    let engine = build_engine(EngineLimits::default(), cache_dir.as_deref(), false)
        .map_err(|err| anyhow::anyhow!("configuring the wasm engine: {}", one_line(&err)))?;
    let mut findings: Vec<(&ServiceSpec, Option<String>, Vec<String>)> = Vec::new();
    let mut resolved = Vec::new();
    for spec in &services {
        let mut found = Vec::new();
        // Resolving allow-listed host names blocks: `check` is a one-shot
        // command, nothing else runs on this runtime meanwhile.
        let outbound = spec.outbound_policy().unwrap_or_else(|problem| {
            found.push(problem);
            OutboundPolicy::default()
        });
        let env = Arc::new(HandlerEnv {
            settings: spec.settings.clone(),
            share: ServiceShare::detached(&spec.name),
            outbound: Arc::new(outbound),
        });
        // As serving loads it: an `oci://` handler is pulled first.
        let version = match load_off_runtime(&engine, &spec.handler, env).await {
            Ok(handler) => Some(summary(&handler)),
            Err(err) => {
                found.push(err.to_string());
                None
            }
        };
        if let Some(tls) = &spec.tls
            && let Err(err) = crate::net::TlsTerminator::load(tls.clone())
        {
            found.push(err.to_string());
        }
        for listen in &spec.listen {
            match check_listen(listen).await {
                Ok(addrs) => resolved.push((spec.name.as_str(), listen, addrs)),
                Err(problem) => found.push(problem),
            }
        }
        findings.push((spec, version, found));
    }
    let clash = validate_resolved(&resolved, &origin).err();
    let mut problems = Vec::new();
    for (spec, version, found) in findings {
        let clashes = clash.as_ref().is_some_and(|err| err.service == spec.name);
        match version {
            Some(version) if found.is_empty() && !clashes => {
                println!("{}", ok_line(spec, &version))
            }
            _ => problems.extend(
                found
                    .into_iter()
                    .map(|p| format!("service {:?}: {p}", spec.name)),
            ),
        }
    }
    problems.extend(clash.map(|err| err.to_string()));
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    match problems.len() {
        0 => Ok(()),
        n => anyhow::bail!("{n} problem(s) found"),
    }
}

fn ok_line(spec: &ServiceSpec, summary: &str) -> String {
    format!(
        "ok: service {:?}: handler {} ({summary})",
        spec.name,
        spec.handler.display()
    )
}

/// What the operator learns of a handler: its version, the contract it was
/// built against and the optional parts of the host it imports.
fn summary(handler: &Handler) -> String {
    let uses = match handler.optional_imports() {
        [] => "nothing optional".to_owned(),
        uses => uses.join(", "),
    };
    format!(
        "version {}, contract {}, uses {uses}",
        handler.hash(),
        handler.contract()
    )
}

/// Checks a listen address without binding it: a host name resolves, a
/// Unix socket's directory exists. Returns the resolved addresses.
async fn check_listen(spec: &ListenSpec) -> Result<Vec<std::net::SocketAddr>, String> {
    match spec {
        ListenSpec::Tcp(addr) | ListenSpec::Udp(addr) => {
            addr.resolve().await.map_err(|err| err.to_string())
        }
        ListenSpec::Unix(path) | ListenSpec::UnixDgram(path) => match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(format!(
                "cannot listen on {}: directory {} does not exist",
                path.display(),
                dir.display()
            )),
            _ => Ok(Vec::new()),
        },
        ListenSpec::Fd(_) => Ok(Vec::new()),
    }
}
