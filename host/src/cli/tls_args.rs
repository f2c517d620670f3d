//! The flags of a service's TLS termination.

use std::path::PathBuf;

use clap::Args;

use crate::net::TlsSpec;

/// TLS for the service's TCP listeners.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct TlsArgs {
    /// Terminate TLS on the TCP listeners with this certificate chain (PEM,
    /// the server's certificate first); needs --tls-key. SIGHUP re-reads
    /// it (and the key) without dropping connections.
    #[arg(long, value_name = "PEM", requires = "tls_key", help_heading = "TLS")]
    pub(crate) tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert", help_heading = "TLS")]
    pub(crate) tls_key: Option<PathBuf>,

    /// Require a client certificate signed by this CA (PEM): mutual TLS.
    /// The handler can read the verified subject.
    #[arg(long, value_name = "PEM", requires = "tls_cert", help_heading = "TLS")]
    pub(crate) tls_client_ca: Option<PathBuf>,

    /// An ALPN protocol to offer (e.g. h2, redis); repeatable, in
    /// preference order. The one agreed on is the handler's to read.
    #[arg(
        long,
        value_name = "PROTOCOL",
        requires = "tls_cert",
        help_heading = "TLS"
    )]
    pub(crate) tls_alpn: Vec<String>,
}

/// The flags' ids, for the message that sends them to `[service.tls]`.
pub(super) const TLS_FLAGS: &[(&str, &str)] = &[
    ("tls_cert", "cert"),
    ("tls_key", "key"),
    ("tls_client_ca", "client_ca"),
    ("tls_alpn", "alpn"),
];

impl TlsArgs {
    /// The TLS of the one service the flags describe, if any.
    pub(crate) fn spec(&self) -> Option<TlsSpec> {
        let (cert, key) = (self.tls_cert.clone()?, self.tls_key.clone()?);
        Some(TlsSpec {
            cert,
            key,
            client_ca: self.tls_client_ca.clone(),
            alpn: self.tls_alpn.clone(),
        })
    }
}
