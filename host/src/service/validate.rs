//! The one validator that serve, reload and `check` use: every service's
//! listeners, limits and names, and no two services on one address.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::spec::{MAX_CONNECTIONS, MAX_DATAGRAM, MAX_MEMORY_MIB, MIN_CPU, Origin, ServiceSpec};
use crate::net::{ListenSpec, Transport};

/// Why a set of services cannot run: one line naming where (flags or
/// file), the service, the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}, service {service:?}: {key}: {message}")]
pub(crate) struct SpecError {
    /// The command line or the config file.
    pub(crate) origin: Origin,
    /// The service at fault.
    pub(crate) service: String,
    /// The flag or key at fault, e.g. `limits.max_memory_mib`.
    pub(crate) key: String,
    /// What is wrong, and the fix.
    pub(crate) message: String,
}

/// Checks `services` as a whole: names, listeners, limits. Serve, reload
/// and `check` all call this, whatever the services were built from.
pub(crate) fn validate(services: &[ServiceSpec], origin: &Origin) -> Result<(), SpecError> {
    validate_with(services, origin, true)
}

/// [`validate`], where `need_listeners` false lets a service have none
/// (`wasmserve check --handler PATH` checks a handler alone).
pub(crate) fn validate_with(
    services: &[ServiceSpec],
    origin: &Origin,
    need_listeners: bool,
) -> Result<(), SpecError> {
    let error = |service: &ServiceSpec, key: &str, message: String| SpecError {
        origin: origin.clone(),
        service: service.name.clone(),
        key: key.to_owned(),
        message,
    };
    let flags = *origin == Origin::Flags;
    let key = |flag: &str, file_key: &str| if flags { flag } else { file_key }.to_owned();
    let mut names: HashMap<&str, ()> = HashMap::new();
    let mut listeners: HashMap<String, &str> = HashMap::new();
    for service in services {
        if service.name.trim().is_empty() {
            return Err(error(
                service,
                "name",
                "is empty: give the service a name".into(),
            ));
        }
        if names.insert(&service.name, ()).is_some() {
            return Err(error(
                service,
                "name",
                "a service of this name is defined twice; rename one".into(),
            ));
        }
        if need_listeners && service.listen.is_empty() {
            let message = match flags {
                true => {
                    "no listener: give at least one of --tcp, --udp, --unix, --unix-dgram or --listen-fd"
                }
                false => "is empty: give at least one address, e.g. listen = [\"tcp:8100\"]",
            };
            return Err(error(service, &key("listeners", "listen"), message.into()));
        }
        for spec in &service.listen {
            let wanted = spec.to_string();
            // Port 0 asks for any free port: two of them never clash.
            let any_port = spec.inet_addr().is_some_and(|addr| addr.port() == 0);
            if any_port {
                continue;
            }
            if let Some(other) = listeners.insert(wanted.clone(), &service.name) {
                if let ListenSpec::Fd(fd) = spec {
                    return Err(error(
                        service,
                        &key("--listen-fd", "listen"),
                        format!("descriptor {fd} is given more than once"),
                    ));
                }
                return Err(error(
                    service,
                    &key("listeners", "listen"),
                    format!(
                        "{wanted} is also a listener of service {other:?}; each address may be served by one service only"
                    ),
                ));
            }
        }
        if !MAX_CONNECTIONS.contains(&service.max_connections) {
            return Err(error(
                service,
                &key("--max-connections", "limits.max_connections"),
                out_of_range(service.max_connections, &MAX_CONNECTIONS, ""),
            ));
        }
        if !MAX_CONNECTIONS.contains(&service.max_connections_per_source) {
            return Err(error(
                service,
                &key(
                    "--max-connections-per-source",
                    "limits.max_connections_per_source",
                ),
                out_of_range(service.max_connections_per_source, &MAX_CONNECTIONS, ""),
            ));
        }
        let limits = &service.limits;
        let mib = limits.max_memory_bytes / (1024 * 1024);
        let whole_mib = limits.max_memory_bytes % (1024 * 1024) == 0;
        if !whole_mib || !u32::try_from(mib).is_ok_and(|mib| MAX_MEMORY_MIB.contains(&mib)) {
            return Err(error(
                service,
                &key("--max-memory", "limits.max_memory_mib"),
                out_of_range(format!("{mib} MiB"), &MAX_MEMORY_MIB, " (MiB)"),
            ));
        }
        if limits.max_cpu < MIN_CPU {
            return Err(error(
                service,
                &key("--max-cpu", "limits.max_cpu"),
                format!(
                    "{:?} is too short: give at least {MIN_CPU:?}",
                    limits.max_cpu
                ),
            ));
        }
        for (value, flag, file_key) in [
            (limits.max_lifetime, "--max-lifetime", "limits.max_lifetime"),
            (limits.idle_timeout, "--idle-timeout", "limits.idle_timeout"),
            (
                limits.first_byte_timeout,
                "--first-byte-timeout",
                "limits.first_byte_timeout",
            ),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(error(
                    service,
                    &key(flag, file_key),
                    "0 would end every request at once: give a duration such as \"30s\", or leave it out for no limit".into(),
                ));
            }
        }
        if !MAX_DATAGRAM.contains(&service.socket.max_datagram) {
            return Err(error(
                service,
                &key("--max-datagram", "socket.max_datagram"),
                out_of_range(service.socket.max_datagram, &MAX_DATAGRAM, " (bytes)"),
            ));
        }
        if service.socket.backlog < 1 {
            return Err(error(
                service,
                &key("--backlog", "socket.backlog"),
                format!("{} is out of range: give 1 or more", service.socket.backlog),
            ));
        }
    }
    Ok(())
}

/// `"{value} is out of range: give {start} to {end}{unit}"`.
fn out_of_range<T: fmt::Display>(
    value: impl fmt::Display,
    range: &RangeInclusive<T>,
    unit: &str,
) -> String {
    format!(
        "{value} is out of range: give {} to {}{unit}",
        range.start(),
        range.end()
    )
}

/// Checks that no two services listen on the same address once host names
/// are resolved (`tcp:localhost:8100` and `tcp:127.0.0.1:8100` clash).
/// `resolved` holds, per service name, each listen spec with its addresses.
pub(crate) fn validate_resolved(
    resolved: &[(&str, &ListenSpec, Vec<SocketAddr>)],
    origin: &Origin,
) -> Result<(), SpecError> {
    let mut seen: HashMap<(Transport, SocketAddr), (&str, &ListenSpec)> = HashMap::new();
    for (service, spec, addrs) in resolved {
        let Some(transport) = spec.transport() else {
            continue;
        };
        for addr in addrs.iter().filter(|addr| addr.port() != 0) {
            if let Some((other, other_spec)) = seen.insert((transport, *addr), (service, spec))
                && other_spec != *spec
            {
                return Err(SpecError {
                    origin: origin.clone(),
                    service: service.to_string(),
                    key: "listen".to_owned(),
                    message: format!(
                        "{spec} is {transport} {addr}, which {other_spec} of service {other:?} names too; each address may be served by one service only"
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, listen: &[&str]) -> ServiceSpec {
        ServiceSpec {
            listen: listen
                .iter()
                .map(|text| text.parse().expect("valid spec"))
                .collect(),
            name: name.to_owned(),
            ..ServiceSpec::for_handler("echo.wasm".into())
        }
    }

    fn file() -> Origin {
        Origin::File("w.toml".into())
    }

    fn message(services: &[ServiceSpec]) -> String {
        validate(services, &file())
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn a_valid_set_passes() {
        let services = [
            service("a", &["tcp:8100", "udp:8100", "tcp:0"]),
            service("b", &["tcp:8101", "tcp:0", "unix:/tmp/b.sock"]),
        ];
        assert_eq!(validate(&services, &file()), Ok(()));
    }

    #[test]
    fn duplicate_listen_addresses_across_services_are_refused() {
        let text = message(&[
            service("a", &["tcp:8100"]),
            service("b", &["tcp:127.0.0.1:8100"]),
        ]);
        for needle in [
            "w.toml",
            "service \"b\"",
            "listen",
            "tcp:127.0.0.1:8100",
            "\"a\"",
        ] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
        let text = message(&[service("a", &["unix:/tmp/x", "unix:/tmp/x"])]);
        assert!(text.contains("unix:/tmp/x"), "{text}");
    }

    #[test]
    fn duplicate_names_and_empty_listen_are_refused() {
        assert!(message(&[service("a", &["tcp:1"]), service("a", &["tcp:2"])]).contains("twice"));
        assert!(message(&[service("a", &[])]).contains("listen: is empty"));
    }

    #[test]
    fn limits_are_range_checked_with_the_key() {
        let mut zero_memory = service("a", &["tcp:1"]);
        zero_memory.limits.max_memory_bytes = 0;
        assert!(message(&[zero_memory]).contains("limits.max_memory_mib: 0 MiB is out of range"));

        let mut zero_connections = service("a", &["tcp:1"]);
        zero_connections.max_connections = 0;
        assert!(message(&[zero_connections]).contains("limits.max_connections"));

        let mut no_cpu = service("a", &["tcp:1"]);
        no_cpu.limits.max_cpu = Duration::ZERO;
        assert!(message(&[no_cpu]).contains("limits.max_cpu"));

        let mut no_idle = service("a", &["tcp:1"]);
        no_idle.limits.idle_timeout = Some(Duration::ZERO);
        assert!(message(&[no_idle]).contains("limits.idle_timeout"));
    }

    #[test]
    fn flags_are_named_as_flags() {
        let mut spec = service("echo.wasm", &["tcp:1"]);
        spec.max_connections = 0;
        let text = validate(&[spec], &Origin::Flags)
            .expect_err("invalid")
            .to_string();
        assert!(text.starts_with("command line"), "{text}");
        assert!(text.contains("--max-connections"), "{text}");
    }

    #[test]
    fn resolved_addresses_that_meet_are_refused() {
        let a: ListenSpec = "tcp:localhost:8100".parse().expect("valid");
        let b: ListenSpec = "tcp:127.0.0.1:8100".parse().expect("valid");
        let c: ListenSpec = "udp:127.0.0.1:8100".parse().expect("valid");
        let addr: SocketAddr = "127.0.0.1:8100".parse().expect("valid");
        let clash = [("a", &a, vec![addr]), ("b", &b, vec![addr])];
        let text = validate_resolved(&clash, &file())
            .expect_err("clash")
            .to_string();
        assert!(
            text.contains("tcp:localhost:8100 of service \"a\""),
            "{text}"
        );
        let no_clash = [("a", &a, vec![addr]), ("c", &c, vec![addr])];
        assert_eq!(validate_resolved(&no_clash, &file()), Ok(()));
    }
}
