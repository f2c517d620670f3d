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
//! max_memory_mib = 32
//! max_cpu = "500ms"
//! max_lifetime = "10m"
//! idle_timeout = "30s"
//!
//! [service.settings]                 # read by the guest (config.get)
//! greeting = "hello"
//! ```
//!
//! Unknown keys are errors that name the key and its line.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::cli::ListenAddr;
use crate::limits::ConnectionLimits;
use crate::listener::{ListenOptions, ListenSpec};
use crate::state::Settings;

/// One service, resolved: what `serve` needs to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service's name, in log lines and `listening` lines.
    pub name: String,
    /// The handler component.
    pub handler: PathBuf,
    /// Where it listens.
    pub listen: Vec<ListenSpec>,
    /// Socket settings.
    pub listen_options: ListenOptions,
    /// Requests served at once.
    pub max_connections: u32,
    /// What each request may use.
    pub limits: ConnectionLimits,
    /// Settings the guest reads.
    pub settings: Settings,
    /// Whether to reload the handler when its file changes.
    pub watch: bool,
    /// Whether datagrams are served by reused, warm instances rather than a
    /// fresh instance each (see [`crate::server::ServeConfig`]).
    pub reuse_datagram_instances: bool,
}

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
    /// A value is out of place (a bad address, a duplicate name, ...).
    #[error("config {path:?}, service {service:?}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The service at fault.
        service: String,
        /// What is wrong and how to fix it.
        message: String,
    },
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
    settings: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsTable {
    max_connections: Option<u32>,
    max_memory_mib: Option<u32>,
    max_cpu: Option<String>,
    max_lifetime: Option<String>,
    idle_timeout: Option<String>,
}

impl FromStr for ListenSpec {
    type Err = String;

    /// `tcp:[HOST:]PORT`, `udp:[HOST:]PORT`, `unix:PATH`, `unix-dgram:PATH`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (transport, addr) = text.split_once(':').ok_or_else(|| {
            format!("listen address {text:?} lacks a transport: write tcp:8100, udp:8100, unix:/path or unix-dgram:/path")
        })?;
        match transport {
            "tcp" => addr.parse::<ListenAddr>().map(ListenSpec::Tcp),
            "udp" => addr.parse::<ListenAddr>().map(ListenSpec::Udp),
            "unix" if !addr.is_empty() => Ok(ListenSpec::Unix(addr.into())),
            "unix-dgram" if !addr.is_empty() => Ok(ListenSpec::UnixDatagram(addr.into())),
            _ => Err(format!(
                "listen address {text:?}: expected tcp:[HOST:]PORT, udp:[HOST:]PORT, unix:PATH or unix-dgram:PATH"
            )),
        }
    }
}

/// Reads and checks the configuration file at `path`.
pub fn load(path: &Path) -> Result<Vec<Service>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path)
}

/// Parses configuration `text`; relative handler paths are resolved against
/// the directory of `path`.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Service>, ConfigError> {
    let file: ConfigFile = toml::from_str(text).map_err(|err| ConfigError::Parse {
        path: path.to_owned(),
        message: crate::error::one_line(&err),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    if file.services.is_empty() {
        return Err(ConfigError::Parse {
            path: path.to_owned(),
            message: "no [[service]] table: add at least one service".to_owned(),
        });
    }
    let mut names = HashSet::new();
    file.services
        .into_iter()
        .map(|table| {
            let invalid = |message: String| ConfigError::Invalid {
                path: path.to_owned(),
                service: table.name.clone(),
                message,
            };
            if !names.insert(table.name.clone()) {
                return Err(invalid(
                    "a service of this name is defined twice".to_owned(),
                ));
            }
            if table.listen.is_empty() {
                return Err(invalid(
                    "`listen` is empty: give at least one address".to_owned(),
                ));
            }
            let listen = table
                .listen
                .iter()
                .map(|spec| {
                    spec.parse::<ListenSpec>()
                        .map_err(|err| format!("listen {spec:?}: {err}"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(invalid)?;
            let duration =
                |key: &str, value: &Option<String>| -> Result<Option<Duration>, ConfigError> {
                    value
                        .as_deref()
                        .map(|text| {
                            humantime::parse_duration(text).map_err(|err| {
                                invalid(format!(
                                    "limits.{key} = {text:?}: {err} (write e.g. \"10s\")"
                                ))
                            })
                        })
                        .transpose()
                };
            let defaults = ConnectionLimits::default();
            let limits = ConnectionLimits {
                max_memory_bytes: table
                    .limits
                    .max_memory_mib
                    .map_or(defaults.max_memory_bytes, |mib| mib as usize * 1024 * 1024),
                max_cpu: duration("max_cpu", &table.limits.max_cpu)?.unwrap_or(defaults.max_cpu),
                max_lifetime: duration("max_lifetime", &table.limits.max_lifetime)?,
            };
            let listen_options = ListenOptions {
                idle_timeout: duration("idle_timeout", &table.limits.idle_timeout)?,
                ..ListenOptions::default()
            };
            Ok(Service {
                handler: base.join(&table.handler),
                listen,
                listen_options,
                max_connections: table.limits.max_connections.unwrap_or(1024).max(1),
                limits,
                settings: table.settings.clone(),
                watch: table.watch,
                reuse_datagram_instances: table.reuse_datagram_instances,
                name: table.name.clone(),
            })
        })
        .collect()
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
        assert_eq!(
            echo.listen_options.idle_timeout,
            Some(Duration::from_secs(30))
        );
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
