//! What a TLS handshake negotiated, as the handler may ask it
//! (`request.tls()`).

use rustls::ServerConnection;

/// The negotiated parameters of one TLS connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub(crate) version: String,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub(crate) cipher: String,
    /// The ALPN protocol agreed on, if any.
    pub(crate) alpn: Option<String>,
    /// The server name the client asked for (SNI), if any.
    pub(crate) server_name: Option<String>,
    /// The subject of the client's certificate (mTLS), e.g.
    /// `CN=alice, O=Example`.
    pub(crate) client_subject: Option<String>,
}

impl TlsInfo {
    /// What `connection`'s handshake negotiated.
    pub(crate) fn of(connection: &ServerConnection) -> Self {
        let version = connection
            .protocol_version()
            .map(|version| match version {
                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        let cipher = connection
            .negotiated_cipher_suite()
            .map(|suite| format!("{:?}", suite.suite()))
            .unwrap_or_default();
        let client_subject = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| x509_parser::parse_x509_certificate(cert.as_ref()).ok())
            .map(|(_, cert)| cert.subject().to_string());
        Self {
            version,
            cipher,
            alpn: connection
                .alpn_protocol()
                .map(|proto| String::from_utf8_lossy(proto).into_owned()),
            server_name: connection.server_name().map(str::to_owned),
            client_subject,
        }
    }
}
