//! Talking to the registry: pulling a component (manifest, then its one
//! layer, verified by digest and bounded in size) and pushing one.

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;

use super::artifact::{
    CONFIG_MEDIA_TYPE as WASM_MANIFEST_CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE as WASM_LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, component_artifact,
};
use super::cache::Cache;
use super::{MAX_HANDLER_BYTES, OciRef, Pulled};

fn client_for(reference: &OciRef) -> oci_client::Client {
    // oci-client's HTTP client takes rustls's process-wide crypto provider
    // (it is built without one of its own): ring, as the TLS listener uses.
    // Installing it again fails harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let protocol = match reference.plain_http() {
        true => ClientProtocol::Http,
        false => ClientProtocol::Https,
    };
    oci_client::Client::new(ClientConfig {
        protocol,
        ..ClientConfig::default()
    })
}

/// The credentials `docker login` stored for the reference's registry, or
/// none. Read on the blocking pool: it reads the Docker config file and
/// may run a credential helper.
async fn auth_for(reference: &OciRef) -> RegistryAuth {
    let registry = reference.inner.resolve_registry().to_owned();
    let found = tokio::task::spawn_blocking(move || docker_credential::get_credential(&registry));
    match found.await {
        Ok(Ok(docker_credential::DockerCredential::UsernamePassword(user, password))) => {
            RegistryAuth::Basic(user, password)
        }
        Ok(Ok(docker_credential::DockerCredential::IdentityToken(token))) => {
            RegistryAuth::Bearer(token)
        }
        Ok(Err(_)) | Err(_) => RegistryAuth::Anonymous,
    }
}

/// Pulls `reference` into `cache`: its manifest (checked to be a Wasm
/// component artifact), then its layer unless cached already.
pub(super) async fn pull(reference: &OciRef, cache: &Cache) -> Result<Pulled, String> {
    let client = client_for(reference);
    let auth = auth_for(reference).await;
    let (manifest, digest) = client
        .pull_manifest(&reference.inner, &auth)
        .await
        .map_err(|err| format!("cannot get the manifest: {err}"))?;
    let OciManifest::Image(manifest) = manifest else {
        return Err(
            "an image index, not a Wasm component (push one with `wasmserve push`)".to_owned(),
        );
    };
    if manifest.config.media_type != WASM_MANIFEST_CONFIG_MEDIA_TYPE || manifest.layers.len() != 1 {
        return Err(format!(
            "not a Wasm component artifact (config {}, {} layers; expected {WASM_MANIFEST_CONFIG_MEDIA_TYPE} and one {WASM_LAYER_MEDIA_TYPE} layer)",
            manifest.config.media_type,
            manifest.layers.len()
        ));
    }
    let layer = &manifest.layers[0];
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(format!(
            "its layer is {}, not {WASM_LAYER_MEDIA_TYPE}",
            layer.media_type
        ));
    }
    if u64::try_from(layer.size).unwrap_or(u64::MAX) > MAX_HANDLER_BYTES {
        return Err(format!(
            "its component is {} bytes (at most {MAX_HANDLER_BYTES})",
            layer.size
        ));
    }
    // The cached file, or the bytes to cache.
    let component = match cache.blob(&layer.digest) {
        Some(file) => Ok(file),
        None => {
            let mut bytes = Bounded::default();
            // oci-client checks the bytes against the layer's digest.
            client
                .pull_blob(&reference.inner, layer, &mut bytes)
                .await
                .map_err(|err| format!("cannot get the component: {err}"))?;
            Err(bytes.0)
        }
    };
    // Writing up to MAX_HANDLER_BYTES: on the blocking pool.
    let (cache, reference, layer) = (cache.clone(), reference.clone(), layer.digest.clone());
    tokio::task::spawn_blocking(move || {
        let file = match component {
            Ok(file) => file,
            Err(bytes) => cache
                .store_blob(&layer, &bytes)
                .map_err(|err| format!("cannot cache the component: {err}"))?,
        };
        cache
            .record(&reference, &digest, &layer)
            .map_err(|err| format!("cannot cache the reference: {err}"))?;
        Ok(Pulled { file, digest })
    })
    .await
    .map_err(|err| format!("caching failed: {err}"))?
}

/// A buffer that refuses to grow past [`MAX_HANDLER_BYTES`], whatever the
/// registry sends.
#[derive(Default)]
struct Bounded(Vec<u8>);

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if (self.0.len() + buf.len()) as u64 > MAX_HANDLER_BYTES {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "more than {MAX_HANDLER_BYTES} bytes"
            ))));
        }
        self.0.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// `wasmserve push FILE oci://…`: publishes the component at `file` in the
/// Wasm artifact layout; returns the manifest's URL.
pub(crate) async fn push(file: &Path, reference: &OciRef) -> Result<String, String> {
    let bytes = tokio::fs::read(file)
        .await
        .map_err(|err| format!("{}: {err}", file.display()))?;
    let (config, layer) = component_artifact(bytes)
        .map_err(|err| format!("{}: not a Wasm component: {err}", file.display()))?;
    let layers = [layer];
    let mut manifest = OciImageManifest::build(&layers, &config, None);
    manifest.media_type = Some(MANIFEST_MEDIA_TYPE.to_owned());
    let auth = auth_for(reference).await;
    let pushed = client_for(reference)
        .push(&reference.inner, &layers, config, &auth, Some(manifest))
        .await
        .map_err(|err| format!("pushing to {reference}: {err}"))?;
    Ok(pushed.manifest_url)
}
