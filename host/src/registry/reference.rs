//! `oci://REGISTRY[:PORT]/REPOSITORY[:TAG|@sha256:DIGEST]`.

use std::fmt;
use std::path::Path;

/// The scheme that marks a `--handler` as a registry reference.
pub(crate) const SCHEME: &str = "oci://";

/// A handler's registry reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OciRef {
    pub(crate) inner: oci_client::Reference,
    text: String,
}

impl OciRef {
    /// Parses `oci://…`; `None` for anything else (a file path).
    pub(crate) fn from_path(path: &Path) -> Option<Result<Self, String>> {
        let text = path.to_str()?;
        let rest = text.strip_prefix(SCHEME)?;
        Some(Self::parse(rest, text))
    }

    fn parse(rest: &str, text: &str) -> Result<Self, String> {
        let shape = "expected oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:DIGEST, e.g. oci://ghcr.io/acme/echo:1.0";
        if !rest.contains('/') {
            return Err(format!("{text:?}: no registry; {shape}"));
        }
        let inner: oci_client::Reference = rest
            .parse()
            .map_err(|err| format!("{text:?}: {err}; {shape}"))?;
        Ok(Self {
            inner,
            text: text.to_owned(),
        })
    }

    /// The manifest digest the reference pins, if it pins one.
    pub(crate) fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// Whether the registry is spoken to over plain HTTP: on this
    /// machine's loopback, or listed in `WASMSERVE_INSECURE_REGISTRIES`.
    pub(crate) fn plain_http(&self) -> bool {
        let listed = std::env::var("WASMSERVE_INSECURE_REGISTRIES").unwrap_or_default();
        self.is_loopback()
            || listed
                .split(',')
                .any(|entry| entry.trim() == self.inner.registry())
    }

    /// Whether the registry is on this machine's loopback.
    pub(crate) fn is_loopback(&self) -> bool {
        let registry = self.inner.registry();
        let host = match registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => registry.split(':').next().unwrap_or(registry),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Result<OciRef, String>> {
        OciRef::from_path(Path::new(text))
    }

    #[test]
    fn references_and_paths() {
        assert!(parse("handlers/echo.wasm").is_none());
        let tagged = parse("oci://127.0.0.1:5000/acme/echo:v1").and_then(Result::ok);
        assert!(tagged.as_ref().is_some_and(OciRef::is_loopback));
        assert_eq!(
            tagged.and_then(|r| r.inner.tag().map(str::to_owned)),
            Some("v1".into())
        );
        let pinned = format!("oci://ghcr.io/acme/echo@sha256:{}", "a".repeat(64));
        let pinned = parse(&pinned).and_then(Result::ok);
        assert!(
            pinned
                .as_ref()
                .is_some_and(|r| r.digest().is_some() && !r.is_loopback())
        );
        assert!(parse("oci://echo").is_some_and(|r| r.is_err()));
    }
}
