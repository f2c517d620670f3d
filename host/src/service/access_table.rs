//! A service's `[service.access]` table in the config file: who may
//! connect, how fast, through which load balancers — the names of the
//! access flags (`proxy_protocol` for `--proxy-protocol`).

use serde::Deserialize;

use crate::net::IpNet;
use crate::server::AccessRules;

/// `[service.access]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccessTable {
    #[serde(default)]
    allow_from: Vec<String>,
    #[serde(default)]
    deny_from: Vec<String>,
    max_connection_rate: Option<String>,
    #[serde(default)]
    proxy_protocol: Vec<String>,
}

impl AccessTable {
    /// The rules, or the key at fault and why.
    pub(super) fn rules(&self) -> Result<AccessRules, (&'static str, String)> {
        let nets = |key: &'static str, list: &[String]| {
            list.iter()
                .map(|text| text.parse::<IpNet>().map_err(|err| (key, err)))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(AccessRules {
            allow_from: nets("access.allow_from", &self.allow_from)?,
            deny_from: nets("access.deny_from", &self.deny_from)?,
            max_connection_rate: self
                .max_connection_rate
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|err| ("access.max_connection_rate", err))?,
            proxy_from: nets("access.proxy_protocol", &self.proxy_protocol)?,
        })
    }
}
