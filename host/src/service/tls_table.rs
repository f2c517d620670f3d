//! A service's `[service.tls]` table in the config file: `cert`, `key`,
//! `client_ca`, `alpn` (the `--tls-*` flags). Paths are found from the
//! config file's folder.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::net::TlsSpec;

/// `[service.tls]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsTable {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    #[serde(default)]
    alpn: Vec<String>,
}

impl TlsTable {
    pub(super) fn spec(&self, base: &Path) -> TlsSpec {
        TlsSpec {
            cert: base.join(&self.cert),
            key: base.join(&self.key),
            client_ca: self.client_ca.as_ref().map(|ca| base.join(ca)),
            alpn: self.alpn.clone(),
        }
    }
}
