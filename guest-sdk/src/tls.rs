//! What TLS negotiated on a connection the host terminated TLS for.

use crate::wit;

/// What a TLS connection negotiated ([`crate::Request::tls`]). The host
/// did the handshake (and, with `--tls-client-ca`, verified the client's
/// certificate); the handler reads and writes plaintext.
///
/// ```no_run
/// # fn handle(request: wasmserve_sdk::Request) {
/// match request.tls() {
///     Some(tls) => println!("{} {} client={:?}", tls.version, tls.cipher, tls.client_subject),
///     None => println!("plaintext"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The ALPN protocol agreed on (`--tls-alpn`), if any.
    pub alpn: Option<String>,
    /// The server name the client asked for (SNI), if it sent one.
    pub server_name: Option<String>,
    /// The verified client certificate's subject (mTLS), e.g.
    /// `CN=alice, O=Example`.
    pub client_subject: Option<String>,
}

impl From<wit::TlsInfo> for TlsInfo {
    fn from(info: wit::TlsInfo) -> Self {
        Self {
            version: info.version,
            cipher: info.cipher,
            alpn: info.alpn,
            server_name: info.server_name,
            client_subject: info.client_subject,
        }
    }
}
