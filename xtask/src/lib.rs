//! What the first command and the tests' build script share: making sure
//! the `wasm32-wasip2` target is installed.
//!
//! rustup installs the targets `rust-toolchain.toml` lists only when it
//! installs the toolchain itself; a machine that already had the pinned
//! toolchain (or that runs with `RUSTUP_AUTO_INSTALL=0`) does not get the
//! target, and every wasm build then fails with "can't find crate for
//! `core`". So both add it explicitly, with rustup, when it is missing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target every handler is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// Installs [`WASM_TARGET`] for the toolchain `rustc` runs (the pinned one,
/// inside the workspace) if its standard library is missing.
///
/// `rustc` is the compiler to ask (cargo's `RUSTC` in a build script).
/// Returns one line naming the fix when the target is missing and rustup
/// cannot add it.
pub fn ensure_wasm_target(rustc: OsString) -> Result<(), String> {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| PathBuf::from(text.trim()));
    if let Some(sysroot) = &sysroot
        && sysroot.join("lib/rustlib").join(WASM_TARGET).exists()
    {
        return Ok(());
    }
    eprintln!("installing the {WASM_TARGET} target with rustup (once)");
    match Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!(
            "`rustup target add {WASM_TARGET}` failed ({status}); install the target and retry"
        )),
        Err(err) => Err(format!(
            "the {WASM_TARGET} target is missing and rustup cannot be run ({err}); \
             install the target for this toolchain (https://rustup.rs) and retry"
        )),
    }
}

/// The `cargo build` of Rust handler packages for [`WASM_TARGET`], into
/// `TARGET_DIR/fixtures` (so the first command's echo and the tests' build
/// of every handler share one build).
///
/// The nested build has a target directory of its own so it never waits on
/// a lock the outer build holds, and flags meant for the host build do not
/// leak into it. Its files land in [`handler_dir`].
pub fn handler_build(
    cargo: OsString,
    workspace: &Path,
    target_dir: &Path,
    packages: &[&str],
) -> Command {
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(target_dir.join("fixtures"))
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    for name in packages {
        build.arg("-p").arg(name);
    }
    without_outer_cargo_env(&mut build);
    for var in ["RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_TARGET_DIR"] {
        build.env_remove(var);
    }
    build
}

/// Removes from `command` what the cargo that runs this code (as a build
/// script, or as `cargo run`) put in the environment for it alone:
/// `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, `OUT_DIR`, ... A nested cargo would
/// otherwise see them, and a dependency's build script that reruns when
/// one changes (ring's does) would be rebuilt, and rebuilt again by the
/// next plain `cargo build`. The user's own settings (`CARGO_HOME`,
/// registries, network, terminal) stay.
pub fn without_outer_cargo_env(command: &mut Command) {
    const KEEP: [&str; 7] = [
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTR",
        "CARGO_TERM_",
        "CARGO_BUILD_JOBS",
    ];
    const SET_FOR_BUILD_SCRIPTS: [&str; 9] = [
        "OUT_DIR",
        "TARGET",
        "HOST",
        "NUM_JOBS",
        "OPT_LEVEL",
        "PROFILE",
        "DEBUG",
        "RUSTDOC",
        "RUSTC_LINKER",
    ];
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let outer = (name.starts_with("CARGO_") && !KEEP.iter().any(|keep| name.starts_with(keep)))
            || SET_FOR_BUILD_SCRIPTS.contains(&name);
        if outer {
            command.env_remove(name);
        }
    }
}

/// Where [`handler_build`] writes `NAME.wasm` (a package's `-` becomes `_`).
pub fn handler_dir(target_dir: &Path) -> PathBuf {
    target_dir
        .join("fixtures")
        .join(WASM_TARGET)
        .join("release")
}
