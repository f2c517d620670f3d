//! What a service's TLS is made of (`--tls-cert`, `--tls-key`,
//! `--tls-client-ca`, `--tls-alpn`, or `[service.tls]`), and the rustls
//! server configuration built from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// A service's TLS settings, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSpec {
    /// The certificate chain (PEM), the server's certificate first.
    pub(crate) cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub(crate) key: PathBuf,
    /// When set, clients must present a certificate this CA (PEM bundle)
    /// signed.
    pub(crate) client_ca: Option<PathBuf>,
    /// The ALPN protocols offered, in preference order (e.g. `h2`).
    pub(crate) alpn: Vec<String>,
}

/// Why a TLS configuration cannot be used: one line naming the file, the
/// flag and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("{flag} {}: {problem} ({fix})", path.display())]
    File {
        flag: &'static str,
        path: PathBuf,
        problem: String,
        fix: &'static str,
    },
    #[error("--tls-cert/--tls-key: {0} (the key must be the certificate's)")]
    Mismatch(String),
}

fn file_error(
    flag: &'static str,
    path: &Path,
    problem: impl ToString,
    fix: &'static str,
) -> TlsError {
    TlsError::File {
        flag,
        path: path.to_owned(),
        problem: problem.to_string(),
        fix,
    }
}

const CERT_FIX: &str = "give a PEM file holding the certificate chain, server certificate first";

fn certificates(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| file_error(flag, path, err, CERT_FIX))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| file_error(flag, path, err, CERT_FIX))?;
    match certs.is_empty() {
        true => Err(file_error(flag, path, "no CERTIFICATE in it", CERT_FIX)),
        false => Ok(certs),
    }
}

impl TlsSpec {
    /// Reads the files and builds the server configuration.
    pub(crate) fn server_config(&self) -> Result<ServerConfig, TlsError> {
        let certs = certificates("--tls-cert", &self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|err| {
            file_error(
                "--tls-key",
                &self.key,
                err,
                "give a PEM file holding the certificate's private key, unencrypted",
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| TlsError::Mismatch(err.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let ca_error = |err: &dyn std::fmt::Display| {
                    file_error(
                        "--tls-client-ca",
                        ca,
                        err,
                        "give the CA's certificate in PEM",
                    )
                };
                let mut roots = RootCertStore::empty();
                for cert in certificates("--tls-client-ca", ca)? {
                    roots.add(cert).map_err(|err| ca_error(&err))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|err| ca_error(&err))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|err| TlsError::Mismatch(err.to_string()))?;
        config.alpn_protocols = self.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        // The server's order of cipher suites wins over the client's (what
        // testssl.sh and the Mozilla guidelines expect of a server).
        config.ignore_client_order = true;
        Ok(config)
    }
}
