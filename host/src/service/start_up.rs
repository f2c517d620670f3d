//! What the supervisor does once per service as it starts or reloads
//! them: resolving and checking addresses, loading TLS files, the one-line
//! errors that name the service, and the start-up summary line.

use std::sync::Arc;
use std::time::Duration;

use super::spec::{Origin, ServiceSpec};
use super::validate::validate_resolved;
use crate::net::{TlsSpec, TlsTerminator};

/// Resolves every TCP and UDP listen spec and refuses two services that
/// would share an address (see [`validate_resolved`]).
pub(super) async fn resolve_and_check(
    wanted: &[ServiceSpec],
    origin: &Origin,
) -> anyhow::Result<()> {
    let mut resolved = Vec::new();
    for spec in wanted {
        for listen in &spec.listen {
            if let Some(addr) = listen.inet_addr() {
                let addrs = addr
                    .resolve()
                    .await
                    .map_err(|err| in_service(origin, &spec.name, err))?;
                resolved.push((spec.name.as_str(), listen, addrs));
            }
        }
    }
    validate_resolved(&resolved, origin)?;
    Ok(())
}

/// Reads a service's certificate, key and client CA, off the runtime.
pub(super) async fn load_tls(spec: Option<TlsSpec>) -> anyhow::Result<Option<Arc<TlsTerminator>>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let loaded = tokio::task::spawn_blocking(move || TlsTerminator::load(spec)).await?;
    Ok(Some(Arc::new(loaded?)))
}

/// `err`, prefixed with the config file and the service it concerns (a
/// service from the flags is the only one: no prefix).
pub(super) fn in_service(
    origin: &Origin,
    service: &str,
    err: impl std::fmt::Display,
) -> anyhow::Error {
    match origin {
        Origin::Flags => anyhow::anyhow!("{err}"),
        Origin::File(_) => anyhow::anyhow!("{origin}, service {service:?}: {err}"),
    }
}

/// One line of the start-up summary: a service, its listeners and limits.
pub(super) fn describe(spec: &ServiceSpec, bound: &[String]) -> String {
    let limits = &spec.limits;
    let optional = |value: Option<Duration>| value.map_or("none".to_owned(), |d| format!("{d:?}"));
    let access = spec.access.to_string();
    let access = match access.is_empty() {
        true => access,
        false => format!("; access: {access}"),
    };
    format!(
        "service {:?}: handler {} on {}; limits: max-connections={} max-memory={}MiB max-cpu={:?} max-lifetime={} idle-timeout={} first-byte-timeout={}; state: {}{access}",
        spec.name,
        spec.handler.display(),
        bound.join(", "),
        spec.max_connections,
        limits.max_memory_bytes / (1024 * 1024),
        limits.max_cpu,
        optional(limits.max_lifetime),
        optional(limits.idle_timeout),
        optional(limits.first_byte_timeout),
        crate::shared::shown_backend(&spec.state.backend),
    )
}
