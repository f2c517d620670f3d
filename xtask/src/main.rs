//! `cargo serve NAME [WASMSERVE FLAGS...]` (an alias in `.cargo/config.toml`):
//! serve one of the bundled handlers (`handlers/NAME`) from a fresh clone,
//! with nothing installed but rustup.
//!
//! It adds the `wasm32-wasip2` target if the toolchain lacks it, builds the
//! handler for it while the host builds, then runs the host as `cargo run --bin wasmserve --
//! --handler PATH FLAGS...` (the `dev` profile, whose build `cargo test`
//! reuses). Without flags it serves on `--tcp 8100`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use xtask::{WASM_TARGET, ensure_wasm_target, handler_build, handler_dir, without_outer_cargo_env};

const USAGE: &str = "usage: cargo serve NAME [WASMSERVE FLAGS...]
serves the bundled handler handlers/NAME (without flags: --tcp 8100), e.g.
  cargo serve echo --tcp 8100
  cargo serve greet --tcp 8101 --set greeting=hi";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let bundled = bundled();
    let mut args = env::args().skip(1);
    let name = match args.next() {
        Some(flag) if flag == "-h" || flag == "--help" => {
            println!("{USAGE}\nbundled handlers: {}", bundled.join(", "));
            return Ok(());
        }
        Some(name) => name,
        None => return Err(format!("name a handler\n{USAGE}")),
    };
    let mut flags: Vec<String> = args.collect();
    if flags.is_empty() {
        flags = vec!["--tcp".into(), "8100".into()];
    }
    if !bundled.contains(&name) {
        return Err(format!(
            "there is no bundled handler {name:?} (give one of: {}); to serve your own, \
             run `cargo run --bin wasmserve -- --handler PATH.wasm --tcp 8100`",
            bundled.join(", ")
        ));
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    // The host builds while the wasm target downloads and the handler
    // builds: the host's build ends in a long single-threaded compile and
    // link that the handler's build overlaps.
    let mut host = Command::new(&cargo);
    host.args(["build", "--bin", "wasmserve", "--manifest-path"])
        .arg(workspace().join("Cargo.toml"));
    without_outer_cargo_env(&mut host);
    let mut host = host
        .spawn()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    let handler = ensure_wasm_target(rustc).and_then(|()| {
        handler_build(cargo.clone(), &workspace(), &target_dir, &[&name])
            .arg("--quiet")
            .status()
            .map_err(|err| format!("cannot run cargo: {err}"))
    });
    let host = host
        .wait()
        .map_err(|err| format!("cannot wait for cargo: {err}"))?;
    if !handler?.success() {
        return Err(format!(
            "building {name} for {WASM_TARGET} failed (see above)"
        ));
    }
    if !host.success() {
        return Err("building the host failed (see above)".to_owned());
    }
    let wasm = handler_dir(&target_dir).join(format!("{}.wasm", name.replace('-', "_")));

    let mut serve = Command::new(cargo);
    serve
        .args(["run", "--quiet", "--bin", "wasmserve", "--manifest-path"])
        .arg(workspace().join("Cargo.toml"))
        .arg("--")
        .arg("--handler")
        .arg(&wasm)
        .args(&flags);
    without_outer_cargo_env(&mut serve);
    Err(format!("cannot run cargo: {}", exec(serve)))
}

/// The workspace this crate lives in.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The Rust handlers under `handlers/` (a folder with a `Cargo.toml`).
fn bundled() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("handlers"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Replaces this process with `command` (so Ctrl-C and the exit status are
/// the server's); returns only the error if it could not.
fn exec(mut command: Command) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    command.exec()
}
