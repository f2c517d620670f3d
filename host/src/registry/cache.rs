//! The on-disk cache of pulled handlers, by digest:
//!
//! - `blobs/sha256-HEX.wasm`: a component, named by its layer digest;
//! - `manifests/sha256-HEX`: a manifest digest → its layer digest;
//! - `refs/REFERENCE`: a reference → the manifest digest it last resolved
//!   to (what a restart uses when the registry is unreachable).
//!
//! Files are written to a temporary name and renamed, so a crash never
//! leaves half a blob under a digest.

use std::path::{Path, PathBuf};

use super::{OciRef, Pulled, RegistryError};

#[derive(Debug, Clone)]
pub(super) struct Cache {
    dir: PathBuf,
}

/// `sha256:HEX` as a file name.
fn file_name(digest: &str) -> String {
    digest.replace(':', "-")
}

/// A reference as a file name.
fn ref_name(reference: &OciRef) -> String {
    reference
        .to_string()
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "._-".contains(c) {
            true => c,
            false => '_',
        })
        .collect()
}

impl Cache {
    /// Opens (creating) the cache in `dir`.
    pub(super) fn open(dir: &Path) -> Result<Self, RegistryError> {
        for sub in ["blobs", "manifests", "refs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|cause| RegistryError::Cache {
                dir: dir.to_owned(),
                cause,
            })?;
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The cached blob of layer `digest`, if cached.
    pub(super) fn blob(&self, digest: &str) -> Option<PathBuf> {
        let path = self
            .dir
            .join("blobs")
            .join(format!("{}.wasm", file_name(digest)));
        path.is_file().then_some(path)
    }

    /// The cached component of manifest `digest`, if cached.
    pub(super) fn manifest_blob(&self, digest: &str) -> Option<PathBuf> {
        let layer =
            std::fs::read_to_string(self.dir.join("manifests").join(file_name(digest))).ok()?;
        self.blob(layer.trim())
    }

    /// What `reference` resolved to last, if its component is cached.
    pub(super) fn last_resolved(&self, reference: &OciRef) -> Option<Pulled> {
        let digest =
            std::fs::read_to_string(self.dir.join("refs").join(ref_name(reference))).ok()?;
        let digest = digest.trim().to_owned();
        let file = self.manifest_blob(&digest)?;
        Some(Pulled { file, digest })
    }

    /// Stores `bytes` as the blob of layer `layer` (already verified).
    pub(super) fn store_blob(&self, layer: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        let path = self
            .dir
            .join("blobs")
            .join(format!("{}.wasm", file_name(layer)));
        write_atomically(&path, bytes)?;
        Ok(path)
    }

    /// Records that `reference` resolved to manifest `manifest`, whose
    /// layer is `layer`.
    pub(super) fn record(
        &self,
        reference: &OciRef,
        manifest: &str,
        layer: &str,
    ) -> std::io::Result<()> {
        write_atomically(
            &self.dir.join("manifests").join(file_name(manifest)),
            layer.as_bytes(),
        )?;
        write_atomically(
            &self.dir.join("refs").join(ref_name(reference)),
            manifest.as_bytes(),
        )
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
