//! The configuration file: several services in one process, inetd style.
//!
//! ```toml
//! [[service]]
//! name = "echo"
//! handler = "echo.wasm"              # relative to this file
//! listen = ["tcp:8100", "udp:8100", "unix:/tmp/echo.sock"]
//!
//! [service.limits]                   # all optional
//! max_connections = 100
//! max_connections_per_source = 16
//! max_memory_mib = 32
//! max_cpu = "500ms"
//! max_lifetime = "10m"
//! idle_timeout = "30s"
//! first_byte_timeout = "10s"
//!
//! [service.socket]                   # all optional, as the flags
//! backlog = 1024
//! tcp_nodelay = true
//! reuse_addr = true
//! recv_buffer = 262144
//! max_datagram = 65507
//! unix_mode = "660"
//!
//! [service.settings]                 # read by the guest (config.get)
//! greeting = "hello"
//! ```
//!
//! Unknown keys are errors that name the key and its line; values are
//! checked by the same validator as the flags (`spec::validate`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::access_table::AccessTable;
use super::spec::{Origin, ServiceSpec};
use super::state_table::StateTable;
use super::tls_table::TlsTable;
use super::validate::{SpecError, validate};
use crate::net::ListenSpec;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("config {path:?}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the key and the line).
        message: String,
    },
    /// A value is out of place (a bad address, a limit out of range, ...).
    #[error(transparent)]
    Invalid(#[from] SpecError),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// `[[service]]` tables.
    #[serde(rename = "service", default)]
    services: Vec<ServiceTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceTable {
    name: String,
    handler: PathBuf,
    listen: Vec<String>,
    #[serde(default)]
    watch: bool,
    #[serde(default)]
    reuse_datagram_instances: bool,
    #[serde(default)]
    limits: LimitsTable,
    #[serde(default)]
    socket: SocketTable,
    #[serde(default)]
    settings: BTreeMap<String, String>,
    #[serde(default)]
    state: StateTable,
    /// Where its guests may connect, as `--allow-connect`.
    #[serde(default)]
    allow_connect: Vec<String>,
    #[serde(default)]
    access: AccessTable,
    tls: Option<TlsTable>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsTable {
    max_connections: Option<u32>,
    max_connections_per_source: Option<u32>,
    max_memory_mib: Option<u32>,
    max_cpu: Option<String>,
    max_lifetime: Option<String>,
    idle_timeout: Option<String>,
    first_byte_timeout: Option<String>,
    hangup_grace: Option<String>,
    max_outbound: Option<u32>,
    max_outbound_datagrams: Option<u32>,
    max_outbound_datagram_bytes: Option<u64>,
    connect_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SocketTable {
    backlog: Option<i32>,
    tcp_nodelay: Option<bool>,
    reuse_addr: Option<bool>,
    recv_buffer: Option<usize>,
    max_datagram: Option<usize>,
    unix_mode: Option<String>,
    unix_owner: Option<String>,
    unix_group: Option<String>,
}

/// Reads and checks the configuration file at `path`.
pub(crate) fn load(path: &Path) -> Result<Vec<ServiceSpec>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates configuration `text`; relative handler paths are
/// resolved against the directory of `path`.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Vec<ServiceSpec>, ConfigError> {
    let file: ConfigFile = toml::from_str(text).map_err(|err| ConfigError::Parse {
        path: path.to_owned(),
        message: crate::error::one_line(&err),
    })?;
    if file.services.is_empty() {
        return Err(ConfigError::Parse {
            path: path.to_owned(),
            message: "no [[service]] table: add at least one service".to_owned(),
        });
    }
    let origin = Origin::File(path.to_owned());
    let base = path.parent().unwrap_or(Path::new("."));
    let services = file
        .services
        .into_iter()
        .map(|table| service(table, base, &origin))
        .collect::<Result<Vec<_>, _>>()?;
    validate(&services, &origin)?;
    Ok(services)
}

/// One `[[service]]` table as a [`ServiceSpec`]; what is left out keeps
/// the flags' default.
fn service(table: ServiceTable, base: &Path, origin: &Origin) -> Result<ServiceSpec, SpecError> {
    let invalid = |key: &str, message: String| SpecError {
        origin: origin.clone(),
        service: table.name.clone(),
        key: key.to_owned(),
        message,
    };
    let listen = table
        .listen
        .iter()
        .map(|spec| {
            spec.parse::<ListenSpec>()
                .map_err(|message| invalid("listen", format!("{spec:?}: {message}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let duration = |key: &str, value: &Option<String>| -> Result<Option<Duration>, SpecError> {
        value
            .as_deref()
            .map(|text| {
                humantime::parse_duration(text).map_err(|err| {
                    invalid(
                        &format!("limits.{key}"),
                        format!("{text:?}: {err} (write e.g. \"10s\")"),
                    )
                })
            })
            .transpose()
    };
    // A registry reference stays as written; a file is found from the
    // config file's folder.
    let handler = match crate::registry::is_oci(&table.handler) {
        true => table.handler.clone(),
        false => base.join(&table.handler),
    };
    let mut spec = ServiceSpec::for_handler(handler);
    let limits = &table.limits;
    if let Some(max) = limits.max_connections {
        spec.max_connections = max;
    }
    if let Some(max) = limits.max_connections_per_source {
        spec.max_connections_per_source = max;
    }
    if let Some(mib) = limits.max_memory_mib {
        spec.limits.max_memory_bytes = (mib as usize).saturating_mul(1024 * 1024);
    }
    if let Some(cpu) = duration("max_cpu", &limits.max_cpu)? {
        spec.limits.max_cpu = cpu;
    }
    spec.limits.max_lifetime = duration("max_lifetime", &limits.max_lifetime)?;
    if let Some(idle) = duration("idle_timeout", &limits.idle_timeout)? {
        spec.limits.idle_timeout = Some(idle);
    }
    if let Some(first) = duration("first_byte_timeout", &limits.first_byte_timeout)? {
        spec.limits.first_byte_timeout = Some(first);
    }
    if let Some(grace) = duration("hangup_grace", &limits.hangup_grace)? {
        spec.limits.hangup_grace = grace;
    }
    let socket = &table.socket;
    let options = &mut spec.socket;
    options.backlog = socket.backlog.unwrap_or(options.backlog);
    options.tcp_nodelay = socket.tcp_nodelay.unwrap_or(options.tcp_nodelay);
    options.reuse_addr = socket.reuse_addr.unwrap_or(options.reuse_addr);
    options.recv_buffer = socket.recv_buffer.or(options.recv_buffer);
    options.max_datagram = socket.max_datagram.unwrap_or(options.max_datagram);
    if let Some(mode) = &socket.unix_mode {
        options.unix_mode = Some(
            crate::net::parse_mode(mode).map_err(|message| invalid("socket.unix_mode", message))?,
        );
    }
    if let Some(owner) = &socket.unix_owner {
        let account =
            crate::net::user(owner).map_err(|message| invalid("socket.unix_owner", message))?;
        options.unix_owner = Some(account.uid);
    }
    if let Some(group) = &socket.unix_group {
        options.unix_group = Some(
            crate::net::group(group).map_err(|message| invalid("socket.unix_group", message))?,
        );
    }
    let mut allow_connect = Vec::new();
    for entry in &table.allow_connect {
        allow_connect.push(
            entry
                .parse()
                .map_err(|message| invalid("allow_connect", message))?,
        );
    }
    if let Some(max) = limits.max_outbound {
        spec.max_outbound = max;
    }
    if let Some(max) = limits.max_outbound_datagrams {
        spec.outbound_datagrams.datagrams = max;
    }
    if let Some(max) = limits.max_outbound_datagram_bytes {
        spec.outbound_datagrams.bytes = max;
    }
    if let Some(timeout) = duration("connect_timeout", &limits.connect_timeout)? {
        spec.connect_timeout = timeout;
    }
    Ok(ServiceSpec {
        listen,
        allow_connect,
        settings: table.settings.clone(),
        state: table
            .state
            .spec(base)
            .map_err(|(key, message)| invalid(key, message))?,
        access: table
            .access
            .rules()
            .map_err(|(key, message)| invalid(key, message))?,
        tls: table.tls.as_ref().map(|tls| tls.spec(base)),
        watch: table.watch,
        reuse_datagram_instances: table.reuse_datagram_instances,
        name: table.name.clone(),
        ..spec
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_service() {
        let services = parse(
            r#"
[[service]]
name = "echo"
handler = "echo.wasm"
listen = ["tcp:8100", "udp:[::1]:8100", "unix:/tmp/e.sock", "unix-dgram:/tmp/d.sock"]
watch = true
[service.limits]
max_connections = 10
max_memory_mib = 16
max_cpu = "500ms"
idle_timeout = "30s"
first_byte_timeout = "5s"
[service.settings]
greeting = "hi"
"#,
            Path::new("/etc/wasmserve/wasmserve.toml"),
        )
        .expect("valid config");
        let echo = &services[0];
        assert_eq!(echo.handler, Path::new("/etc/wasmserve/echo.wasm"));
        assert_eq!(echo.listen.len(), 4);
        assert_eq!(echo.max_connections, 10);
        assert_eq!(echo.limits.max_memory_bytes, 16 * 1024 * 1024);
        assert_eq!(echo.limits.max_cpu, Duration::from_millis(500));
        assert_eq!(echo.limits.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(echo.limits.first_byte_timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            echo.settings.get("greeting").map(String::as_str),
            Some("hi")
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let err = parse(
            "[[service]]\nname = \"a\"\nhandler = \"a.wasm\"\nlisten = [\"tcp:1\"]\nlisten_on = 3\n",
            Path::new("w.toml"),
        )
        .expect_err("unknown key");
        let text = err.to_string();
        assert!(
            text.contains("listen_on") && text.contains("line 5"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod validation {
    use super::*;
    use crate::shared::StateBackend;

    fn error(text: &str) -> String {
        parse(text, Path::new("w.toml"))
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn zero_memory_names_the_file_the_service_and_the_key() {
        let text = error(
            "[[service]]\nname = \"a\"\nhandler = \"a.wasm\"\nlisten = [\"tcp:1\"]\n[service.limits]\nmax_memory_mib = 0\n",
        );
        for needle in [
            "w.toml",
            "service \"a\"",
            "limits.max_memory_mib",
            "out of range",
        ] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
    }

    #[test]
    fn two_services_on_one_address_are_refused() {
        let text = error(
            "[[service]]\nname = \"a\"\nhandler = \"a.wasm\"\nlisten = [\"tcp:8100\"]\n[[service]]\nname = \"b\"\nhandler = \"b.wasm\"\nlisten = [\"tcp:8100\"]\n",
        );
        assert!(
            text.contains("service \"b\"") && text.contains("\"a\""),
            "{text}"
        );
    }

    #[test]
    fn socket_options_are_read() {
        let services = parse(
            "[[service]]\nname = \"a\"\nhandler = \"a.wasm\"\nlisten = [\"unix:/tmp/a\"]\n[service.socket]\nbacklog = 8\nunix_mode = \"660\"\n",
            Path::new("w.toml"),
        )
        .expect("valid");
        assert_eq!(services[0].socket.backlog, 8);
        assert_eq!(services[0].socket.unix_mode, Some(0o660));
        assert!(error("[[service]]\nname = \"a\"\nhandler = \"a.wasm\"\nlisten = [\"unix:/tmp/a\"]\n[service.socket]\nunix_mode = \"999\"\n").contains("socket.unix_mode"));
    }

    #[test]
    fn the_state_table_sets_backend_sharing_and_limits() {
        let services = parse(
            "[[service]]\nname = \"a\"\nhandler = \"a.wasm\"\nlisten = [\"tcp:1\"]\n[service.state]\nbackend = \"file:state.redb\"\nshared_buckets = [\"sessions\"]\nchannel_queue = 8\n",
            Path::new("/etc/ws/w.toml"),
        )
        .unwrap_or_default();
        let state = &services[0].state;
        assert_eq!(
            state.backend,
            StateBackend::File("/etc/ws/state.redb".into())
        );
        assert!(state.shared_buckets.contains("sessions"));
        assert_eq!(state.limits.queue_messages, 8);
        let text = error(
            "[[service]]\nname = \"a\"\nhandler = \"a.wasm\"\nlisten = [\"tcp:1\"]\n[service.state]\nbackend = \"mongodb://x\"\n",
        );
        for needle in [
            "service \"a\"",
            "state.backend",
            "memory, file:PATH or redis://",
        ] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
    }
}
