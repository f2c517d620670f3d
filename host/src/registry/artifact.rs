//! The Wasm OCI artifact layout (CNCF TAG Runtime's "Wasm OCI Artifact",
//! which `wkg` and the `oci-wasm` crate write): a manifest with one
//! `application/wasm` layer, the component, and a
//! `application/vnd.wasm.config.v0+json` config naming its imports and
//! exports. Written here from the component's own top-level import and
//! export sections (wasmparser, which wasmtime builds anyway), so the host
//! needs no WIT decoder to publish.

use oci_client::client::{Config, ImageLayer};
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

/// The media type of the one layer: the component's bytes.
pub(super) const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The media type of the config blob.
pub(super) const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The manifest's own media type: a plain OCI image manifest.
pub(super) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The config blob, as the layout spells it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig {
    /// RFC 3339, UTC.
    created: String,
    author: Option<String>,
    /// Always `wasm`.
    architecture: &'static str,
    /// `wasip2` for a component.
    os: &'static str,
    /// The digest of each layer, so that every config (and so its digest)
    /// is unique to its component.
    layer_digests: Vec<String>,
    component: ComponentWorld,
}

/// What the component imports and exports (interface or item names, as
/// `wasi:io/poll@0.2.12` or `handle`).
#[derive(Debug, Serialize)]
struct ComponentWorld {
    exports: Vec<String>,
    imports: Vec<String>,
    target: Option<String>,
}

/// The config and the layer that publish `component`; an error naming why
/// when it is not a component.
pub(super) fn component_artifact(component: Vec<u8>) -> Result<(Config, ImageLayer), String> {
    let world = world_of(&component)?;
    let digest = format!("sha256:{:x}", Sha256::digest(&component));
    let config = WasmConfig {
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        author: None,
        architecture: "wasm",
        os: "wasip2",
        layer_digests: vec![digest],
        component: world,
    };
    let data = serde_json::to_vec(&config).map_err(|err| format!("config: {err}"))?;
    Ok((
        Config {
            data: data.into(),
            media_type: CONFIG_MEDIA_TYPE.to_owned(),
            annotations: None,
        },
        ImageLayer {
            data: component.into(),
            media_type: LAYER_MEDIA_TYPE.to_owned(),
            annotations: None,
        },
    ))
}

/// The names in the component's own (outermost) import and export
/// sections; nested components and core modules are skipped.
fn world_of(component: &[u8]) -> Result<ComponentWorld, String> {
    let mut world = ComponentWorld {
        exports: Vec::new(),
        imports: Vec::new(),
        target: None,
    };
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        match payload.map_err(|err| err.to_string())? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err("a core WebAssembly module, not a component".to_owned());
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(|err| err.to_string())?;
                    world.imports.push(import.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    let export = export.map_err(|err| err.to_string())?;
                    world.exports.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(world)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_module_is_not_published() {
        // The smallest core module: magic and version 1.
        let module = b"\0asm\x01\0\0\0".to_vec();
        let Err(err) = component_artifact(module) else {
            panic!("a core module was published");
        };
        assert!(err.contains("not a component"), "{err}");
    }

    #[test]
    fn a_component_names_its_imports_and_exports() {
        // An empty component: magic and the component layer's version.
        let empty = b"\0asm\x0d\0\x01\0".to_vec();
        let (config, layer) = component_artifact(empty).expect("a component");
        let text = String::from_utf8(config.data.to_vec()).expect("utf-8");
        assert!(text.contains(r#""os":"wasip2""#), "{text}");
        assert!(
            text.contains(r#""component":{"exports":[],"imports":[]"#),
            "{text}"
        );
        assert!(text.contains(r#""layerDigests":["sha256:"#), "{text}");
        assert_eq!(layer.media_type, LAYER_MEDIA_TYPE);
    }
}
