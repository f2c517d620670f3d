//! Handlers from an OCI registry: `--handler oci://REGISTRY/REPO:TAG` (or
//! `@sha256:…`), in the Wasm component artifact layout the Bytecode
//! Alliance's tools (`wkg`, wasm-pkg-tools) push — one
//! `application/wasm` layer, a `application/vnd.wasm.config.v0+json`
//! config. Pulled blobs are verified by digest and cached on disk by
//! digest, so a restart or a reload works offline with the last digest a
//! tag resolved to. Credentials come from the Docker config file
//! (`~/.docker/config.json`, `$DOCKER_CONFIG`), as `docker login` writes
//! them. `wasmserve push FILE oci://…` publishes a component.
//!
//! Registries on loopback (`localhost`, `127.0.0.0/8`, `[::1]`) are spoken
//! to over plain HTTP, as Docker does, and so are those listed in
//! `WASMSERVE_INSECURE_REGISTRIES` (comma-separated `HOST:PORT`, like
//! Docker's `insecure-registries`: a lab or an internal registry); every
//! other one over HTTPS.

mod artifact;
mod cache;
mod client;
mod reference;

pub(crate) use client::push;
pub(crate) use reference::OciRef;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The largest handler pulled (a component is a few MiB at most).
pub(crate) const MAX_HANDLER_BYTES: u64 = 256 * 1024 * 1024;

/// Why a handler could not be had from a registry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryError {
    #[error("{reference}: {problem}")]
    Pull { reference: String, problem: String },
    #[error("the OCI cache {}: {cause}", dir.display())]
    Cache { dir: PathBuf, cause: std::io::Error },
}

/// Where pulled handlers are cached (set once, at start).
static CACHE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Sets the cache folder: `DIR/oci` under the compile cache's folder, or
/// a temporary one.
pub(crate) fn set_cache_dir(dir: PathBuf) {
    let _ = CACHE_DIR.set(dir);
}

fn cache_dir() -> PathBuf {
    CACHE_DIR
        .get()
        .cloned()
        .unwrap_or_else(|| std::env::temp_dir().join("wasmserve-oci"))
}

/// What a reference resolved to: the cached component file and the
/// manifest digest it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pulled {
    pub(crate) file: PathBuf,
    pub(crate) digest: String,
}

/// Resolves `reference` (a tag asks the registry again; a digest already
/// cached needs no network) and returns the cached file. When the registry
/// cannot be reached, the digest the reference last resolved to is used
/// from the cache, with a warning.
pub(crate) async fn fetch(reference: &OciRef) -> Result<Pulled, RegistryError> {
    let cache = cache::Cache::open(&cache_dir())?;
    if let Some(digest) = reference.digest()
        && let Some(file) = cache.manifest_blob(digest)
    {
        return Ok(Pulled {
            file,
            digest: digest.to_owned(),
        });
    }
    match client::pull(reference, &cache).await {
        Ok(pulled) => Ok(pulled),
        Err(problem) => match cache.last_resolved(reference) {
            Some(pulled) => {
                tracing::warn!(
                    reference = %reference,
                    digest = %pulled.digest,
                    "registry unreachable ({problem}); serving the digest it last resolved to, from the cache"
                );
                Ok(pulled)
            }
            None => Err(RegistryError::Pull {
                reference: reference.to_string(),
                problem,
            }),
        },
    }
}

/// Whether `path` (a `--handler` value) names a registry reference.
pub(crate) fn is_oci(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|text| text.starts_with(reference::SCHEME))
}
