//! Certificates for the TLS tests, minted per test with rcgen into a
//! scratch folder: a CA, server and client certificates it signs, and the
//! bad ones (expired, for another host, from an unknown CA).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A certificate and key written as PEM files.
pub struct Pem {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA that signs certificates into `dir`.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    /// The CA's certificate (PEM file), to trust.
    pub ca_cert: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = new_ca("wasmserve test CA");
        let ca_cert = dir.path().join("ca.pem");
        std::fs::write(&ca_cert, ca.pem()).expect("write ca.pem");
        Pki { dir, ca, ca_cert }
    }

    /// A certificate for `names` (DNS names or IP addresses) with common
    /// name `cn`, signed by this CA; `expired` makes it one that ended in
    /// 2020. Written as `<file>.pem` and `<file>.key`.
    pub fn issue(&self, file: &str, cn: &str, names: &[&str], expired: bool) -> Pem {
        self.sign(file, cn, names, expired, &self.ca)
    }

    /// The flags that serve TLS with a certificate for `localhost` and
    /// 127.0.0.1 signed by this CA: `--tls-cert FILE --tls-key FILE`.
    pub fn server_flags(&self) -> [String; 4] {
        let pem = self.issue("server", "localhost", &["localhost", "127.0.0.1"], false);
        [
            "--tls-cert".to_owned(),
            pem.cert.to_string_lossy().into_owned(),
            "--tls-key".to_owned(),
            pem.key.to_string_lossy().into_owned(),
        ]
    }

    /// A certificate from a CA nobody trusts.
    pub fn untrusted(&self, file: &str, cn: &str, names: &[&str]) -> Pem {
        self.sign(file, cn, names, false, &new_ca("someone else's CA"))
    }

    fn sign(
        &self,
        file: &str,
        cn: &str,
        names: &[&str],
        expired: bool,
        issuer: &CertifiedIssuer<'static, KeyPair>,
    ) -> Pem {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, issuer).expect("sign");
        write_pem(self.dir.path(), file, &cert.pem(), &key.serialize_pem())
    }

    /// A rustls client configuration that trusts this CA, offering `alpn`,
    /// presenting `client` if given.
    pub fn client_config(&self, client: Option<&Pem>, alpn: &[&str]) -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&self.ca_cert).expect("ca"))
            .expect("add ca");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = match client {
            Some(pem) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_file(&pem.cert).expect("cert")],
                    PrivateKeyDer::from_pem_file(&pem.key).expect("key"),
                )
                .expect("client auth"),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(config)
    }
}

fn new_ca(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().expect("key");
    CertifiedIssuer::self_signed(params, key).expect("CA")
}

fn write_pem(dir: &Path, file: &str, cert: &str, key: &str) -> Pem {
    let pem = Pem {
        cert: dir.join(format!("{file}.pem")),
        key: dir.join(format!("{file}.key")),
    };
    std::fs::write(&pem.cert, cert).expect("write cert");
    std::fs::write(&pem.key, key).expect("write key");
    pem
}

/// A TLS client stream over TCP.
pub type TlsClient = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// Connects to `addr` with TLS for server name `name`, completing the
/// handshake; the error the handshake ended with, if any.
pub fn tls_connect(
    config: Arc<rustls::ClientConfig>,
    addr: &str,
    name: &str,
) -> Result<TlsClient, std::io::Error> {
    let server_name =
        rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(std::io::Error::other)?;
    let connection =
        rustls::ClientConnection::new(config, server_name).map_err(std::io::Error::other)?;
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}
