//! Builds every handler crate (`handlers/*`) and test-only fixture
//! (`tests/fixtures/*`) for wasm32-wasip2, once, and writes their paths into
//! `fixtures.rs` for the tests to `include!`.
//!
//! The nested `cargo build` uses its own target directory (`target/fixtures`)
//! so it never waits on a lock the outer build holds. A handler whose
//! constant no test uses shows up as a dead-code warning, which clippy turns
//! into an error: every handler must have a test.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("tests/ lives in the workspace")
        .to_owned();
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let fixture_target_dir = target_dir.join("fixtures");

    for watched in [
        "handlers",
        "guest-sdk",
        "wit",
        "tests/fixtures",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let mut crates = crate_dirs(&workspace.join("handlers"));
    crates.extend(crate_dirs(&workspace.join("tests/fixtures")));
    ensure_wasm_target();

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--target-dir")
        .arg(&fixture_target_dir)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    for (name, _) in &crates {
        build.arg("-p").arg(name);
    }
    // Flags meant for the host build must not leak into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
    ] {
        build.env_remove(var);
    }
    let status = build
        .status()
        .expect("cannot run cargo to build the handler fixtures");
    assert!(
        status.success(),
        "building the handler fixtures for {WASM_TARGET} failed (see above)"
    );

    let out_dir = fixture_target_dir.join(WASM_TARGET).join("release");
    let mut consts = String::new();
    for (name, _) in &crates {
        let file = name.replace('-', "_");
        let path = out_dir.join(format!("{file}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        consts.push_str(&format!(
            "/// `{name}` built for {WASM_TARGET}.\npub(crate) const {}: &str = {:?};\n",
            file.to_uppercase(),
            path.display().to_string()
        ));
    }
    let generated =
        PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("fixtures.rs");
    fs::write(&generated, consts).expect("cannot write fixtures.rs");
}

/// The crates (package name = directory name) directly below `dir`.
fn crate_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut crates: Vec<_> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("Cargo.toml").exists())
        .filter_map(|path| Some((path.file_name()?.to_str()?.to_owned(), path)))
        .collect();
    crates.sort();
    crates
}

/// Installs the wasm target for the pinned toolchain if it is missing (a
/// machine that had the toolchain before `rust-toolchain.toml` asked for the
/// target does not get it otherwise).
fn ensure_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| PathBuf::from(text.trim()));
    if let Some(sysroot) = sysroot
        && sysroot.join("lib/rustlib").join(WASM_TARGET).exists()
    {
        return;
    }
    println!("cargo:warning=installing the {WASM_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status();
    assert!(
        matches!(status, Ok(status) if status.success()),
        "the {WASM_TARGET} target is missing and `rustup target add {WASM_TARGET}` failed; install it and retry"
    );
}
