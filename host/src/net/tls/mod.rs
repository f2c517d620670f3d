//! TLS termination for TCP listeners (rustls, through tokio-rustls; no
//! OpenSSL): a service's certificate and key (PEM), reloadable without
//! dropping connections; optionally client certificates checked against a
//! CA (mTLS). The handshake happens in the host; the handler reads and
//! writes plaintext over a relay (`relay.rs`) and can ask what was
//! negotiated ([`TlsInfo`]).

mod config;
mod info;
mod relay;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

pub(crate) use config::{TlsError, TlsSpec};
pub(crate) use info::TlsInfo;
pub(crate) use relay::relay;

/// A service's TLS: its spec and the server configuration loaded from it.
#[derive(Debug)]
pub(crate) struct TlsTerminator {
    spec: TlsSpec,
    config: RwLock<Arc<rustls::ServerConfig>>,
}

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error("TLS handshake: no handshake within {0:?} (--idle-timeout)")]
    TimedOut(Duration),
    #[error("TLS handshake: {0}")]
    Failed(std::io::Error),
}

impl TlsTerminator {
    /// Loads the certificate, key and client CA `spec` names (blocking
    /// file reads: call off the runtime, or at start).
    pub(crate) fn load(spec: TlsSpec) -> Result<Self, TlsError> {
        let config = spec.server_config()?;
        Ok(Self {
            spec,
            config: RwLock::new(Arc::new(config)),
        })
    }

    /// What it was loaded from.
    pub(crate) fn spec(&self) -> &TlsSpec {
        &self.spec
    }

    /// Takes `fresh`'s configuration (loaded from the same files again):
    /// new handshakes use it, connections already up keep theirs.
    pub(crate) fn adopt(&self, fresh: &TlsTerminator) {
        let config = fresh.current();
        if let Ok(mut current) = self.config.write() {
            *current = config;
        }
    }

    /// The configuration new handshakes use.
    fn current(&self) -> Arc<rustls::ServerConfig> {
        match self.config.read() {
            Ok(config) => Arc::clone(&config),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Performs the server side of the handshake on `stream`, within
    /// `timeout`.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
        timeout: Duration,
    ) -> Result<(tokio_rustls::server::TlsStream<TcpStream>, TlsInfo), HandshakeError> {
        let acceptor = TlsAcceptor::from(self.current());
        let tls = tokio::time::timeout(timeout, acceptor.accept(stream))
            .await
            .map_err(|_| HandshakeError::TimedOut(timeout))?
            .map_err(HandshakeError::Failed)?;
        let info = TlsInfo::of(tls.get_ref().1);
        Ok((tls, info))
    }
}
