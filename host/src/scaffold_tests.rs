//! Tests of `wasmserve new`'s templates (the projects themselves are
//! built and served in tests/all/scaffold.rs).

use super::{RUST_SDK, js_project, parse_name};

/// Every source file of the Rust SDK goes into a new project: one left
/// out breaks every `wasmserve new` build.
#[test]
fn new_rust_projects_get_every_sdk_source_file() {
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/src");
    let mut on_disk: Vec<String> = std::fs::read_dir(&sdk)
        .map(|dir| dir.filter_map(Result::ok))
        .into_iter()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".rs"))
        .collect();
    let mut copied: Vec<String> = RUST_SDK
        .iter()
        .filter_map(|(path, _)| path.strip_prefix("wasmserve-sdk/src/"))
        .map(str::to_owned)
        .collect();
    on_disk.sort();
    copied.sort();
    assert_eq!(copied, on_disk, "update scaffold::RUST_SDK");
}

#[test]
fn the_javascript_template_uses_the_sdk_and_the_current_contract() {
    let files = js_project("jsecho");
    let file = |name: &str| {
        files
            .iter()
            .find(|(path, _)| *path == name)
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    };
    assert!(file("handler.js").contains("from \"./wasmserve.js\""));
    assert!(file("wasmserve.js").contains("export function serve"));
    assert!(file("wit/handler.wit").contains("package wasmserve:handler@0.2.4;"));
}

#[test]
fn names_must_make_a_crate_and_a_file_name() {
    assert!(parse_name("my-echo").is_ok());
    assert!(parse_name("echo_2").is_ok());
    for bad in ["", "2fast", "../up", "a b", "é"] {
        assert!(parse_name(bad).is_err(), "{bad:?}");
    }
}
