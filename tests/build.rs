//! Builds every handler crate (`handlers/*`) and test-only fixture
//! (`tests/fixtures/*`) for wasm32-wasip2, once, and writes their paths into
//! `fixtures.rs` for the tests to `include!`.
//!
//! It also builds the Python and JavaScript handlers (`handlers/python/*`,
//! `handlers/js/*`) with componentize-py and componentize-js, which it installs from PyPI
//! and npm into `target/tools` (git-ignored) on first use. Where a toolchain
//! cannot be installed or run, it says why in a warning and sets the cfg
//! `wasmserve_no_python` or `wasmserve_no_js`, and those tests are reported
//! as ignored, never as passed.
//!
//! The nested `cargo build` uses its own target directory (`target/fixtures`)
//! so it never waits on a lock the outer build holds. A handler whose
//! constant no test uses shows up as a dead-code warning, which clippy turns
//! into an error: every handler must have a test.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::{WASM_TARGET, ensure_wasm_target, handler_build, handler_dir};

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
    if let Err(message) = ensure_wasm_target(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
    {
        panic!("{message}");
    }

    // The Python and JavaScript handlers (package installs, then one
    // single-threaded componentize each) build beside the Rust fixtures'
    // cargo build and beside each other, so their downloads and their one
    // core each overlap it.
    let tools = target_dir.join("tools");
    let languages_dir = fixture_target_dir.join("languages");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let names: Vec<&str> = crates.iter().map(|(name, _)| name.as_str()).collect();
    let (status, languages) = std::thread::scope(|scope| {
        let (workspace, tools, languages_dir) = (&workspace, &tools, &languages_dir);
        let languages = [&PYTHON, &JS].map(|language| {
            scope.spawn(move || build_language(language, workspace, tools, languages_dir))
        });
        let status = handler_build(cargo, workspace, &target_dir, &names).status();
        (status, languages.map(|built| built.join()))
    });
    let status = status.expect("cannot run cargo to build the handler fixtures");
    assert!(
        status.success(),
        "building the handler fixtures for {WASM_TARGET} failed (see above)"
    );
    let languages = languages.map(|built| built.expect("the Python or JavaScript build panicked"));

    let out_dir = handler_dir(&target_dir);
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
    for (language, built) in [&PYTHON, &JS].into_iter().zip(languages) {
        println!("cargo:rustc-check-cfg=cfg({})", language.missing_cfg);
        for handler in language.handlers {
            let name = format!(
                "{}_{}",
                handler.to_uppercase().replace('-', "_"),
                language.suffix.to_uppercase()
            );
            consts.push_str(&format!(
                "/// `handlers/{}/{handler}` built for wasm32-wasip2 (if its toolchain could be installed).\npub(crate) const {name}: &str = {:?};\n",
                language.dir,
                languages_dir.join(format!("{handler}-{}.wasm", language.suffix)).display().to_string()
            ));
        }
        if let Err(reason) = built {
            println!(
                "cargo:warning={} handlers not built, their tests are ignored: {reason}",
                language.name
            );
            println!("cargo:rustc-cfg={}", language.missing_cfg);
        }
    }

    // Debian tools the tests drive; where one is missing, its tests are
    // reported as ignored (with this reason), not passed.
    for (tools, flag, cfg, why) in [
        (
            &["promtool"][..],
            "--version",
            "wasmserve_no_promtool",
            "promtool not found (Debian package prometheus): the promtool test is ignored",
        ),
        (
            &["redis-server", "redis-cli"],
            "--version",
            "wasmserve_no_redis",
            "redis-server or redis-cli not found (Debian packages redis-server, redis-tools): the Redis tests are ignored",
        ),
        (
            &["haproxy"],
            "-v",
            "wasmserve_no_haproxy",
            "haproxy not found (Debian package haproxy): the PROXY protocol tests behind HAProxy are ignored",
        ),
        (
            &["openssl"],
            "version",
            "wasmserve_no_openssl",
            "openssl not found (Debian package openssl): its TLS test is ignored",
        ),
        (
            &["socat"],
            "-V",
            "wasmserve_no_socat",
            "socat not found (Debian package socat): its TLS test is ignored",
        ),
        (
            &["docker-registry"],
            "--version",
            "wasmserve_no_registry",
            "docker-registry not found (Debian package docker-registry): the OCI registry tests are ignored",
        ),
    ] {
        println!("cargo:rustc-check-cfg=cfg({cfg})");
        let found = tools.iter().all(|tool| {
            Command::new(tool)
                .arg(flag)
                .output()
                .is_ok_and(|out| out.status.success())
        });
        if !found {
            println!("cargo:warning={why}");
            println!("cargo:rustc-cfg={cfg}");
        }
    }

    // Redis's own test suite (`tests/all/redis_suite.rs`): tclsh and the
    // Debian source of the installed redis, which `.ci/run` unpacks into
    // target/redis-tests (watched, so unpacking it later reruns this).
    println!("cargo:rustc-check-cfg=cfg(wasmserve_no_redis_suite)");
    let suites = workspace.join("target/redis-tests");
    let _ = fs::create_dir_all(&suites);
    println!("cargo:rerun-if-changed={}", suites.display());
    let source = fs::read_dir(&suites)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.join("tests/test_helper.tcl").exists());
    let tclsh = Command::new("tclsh")
        .stdin(std::process::Stdio::null())
        .output()
        .is_ok();
    match source {
        Some(source) if tclsh => {
            println!(
                "cargo:rustc-env=WASMSERVE_REDIS_SOURCE={}",
                source.display()
            );
        }
        _ => {
            println!(
                "cargo:warning=tclsh (Debian package tcl) or Redis's source in target/redis-tests (`.ci/run` unpacks it) not found: the Redis test-suite tests are ignored"
            );
            println!("cargo:rustc-cfg=wasmserve_no_redis_suite");
            println!("cargo:rustc-env=WASMSERVE_REDIS_SOURCE=");
        }
    }

    // Dropping root (`--user`) can only be tested as root.
    println!("cargo:rustc-check-cfg=cfg(wasmserve_not_root)");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !root {
        println!("cargo:rustc-cfg=wasmserve_not_root");
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

/// A language whose handlers are built with a tool from a package registry.
struct Language {
    /// For messages.
    name: &'static str,
    /// Its folder under `handlers/`.
    dir: &'static str,
    /// `echo-<suffix>.wasm`, `ECHO_<SUFFIX>`.
    suffix: &'static str,
    /// The cfg set when the handlers could not be built.
    missing_cfg: &'static str,
    /// The handlers (folders under `handlers/<dir>/`) to build.
    handlers: &'static [&'static str],
}

const PYTHON: Language = Language {
    name: "Python",
    dir: "python",
    suffix: "py",
    missing_cfg: "wasmserve_no_python",
    handlers: &[
        "echo",
        "greet",
        "ticker",
        "timeout-greet",
        "chatroom",
        "tcpclient",
        "uppercase",
        "proxy",
    ],
};

const JS: Language = Language {
    name: "JavaScript",
    dir: "js",
    suffix: "js",
    missing_cfg: "wasmserve_no_js",
    handlers: &["echo", "greet", "timeout-greet", "visits", "chatroom"],
};

// The tool versions the handlers are built with (docs/contributing.md names them).
include!("../guest-sdk/toolchains.rs");

/// Installs the language's tool if needed, then builds its echo and greet.
fn build_language(
    language: &Language,
    workspace: &Path,
    tools: &Path,
    out_dir: &Path,
) -> Result<(), String> {
    fs::create_dir_all(out_dir).map_err(|err| format!("creating {}: {err}", out_dir.display()))?;
    // Both languages build against the current contract.
    let wit = workspace.join("wit");
    let sources = workspace.join("handlers").join(language.dir);
    match language.suffix {
        "py" => {
            let venv = tools.join("python");
            let tool = venv.join("bin/componentize-py");
            if !tool.exists() || !python_installed(&venv, COMPONENTIZE_PY) {
                // A new version goes into a new venv, as the JavaScript
                // tool goes into an empty folder.
                let _ = fs::remove_dir_all(&venv);
                run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
                run(Command::new(venv.join("bin/pip")).args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    COMPONENTIZE_PY,
                ]))?;
            }
            for handler in language.handlers {
                run(Command::new(&tool)
                    .arg("-d")
                    .arg(&wit)
                    .args(["-w", "handler", "componentize", "app", "-p"])
                    .arg(sources.join(handler))
                    .arg("-p")
                    .arg(workspace.join("guest-sdk/python"))
                    .arg("-o")
                    .arg(out_dir.join(format!("{handler}-py.wasm")))
                    .env_remove("VIRTUAL_ENV"))?;
            }
        }
        _ => {
            let prefix = tools.join("js");
            let tool = prefix.join("node_modules/.bin/componentize-js");
            if !tool.exists() || !js_installed(&prefix, COMPONENTIZE_JS_VERSION) {
                // Another version installed over an older one can be left
                // without a dependency (0.23.0 over 0.22.0 lost
                // preview2-shim): every install starts from an empty folder.
                let _ = fs::remove_dir_all(&prefix);
                run(Command::new("npm")
                    .arg("install")
                    .arg("--prefix")
                    .arg(&prefix)
                    .args(["--no-audit", "--no-fund", "--silent"])
                    .arg(format!(
                        "@bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION}"
                    )))?;
            }
            for handler in language.handlers {
                // StarlingMonkey's HTTP server and fetch event are left
                // out: a socket handler imports no `wasi:http`. It resolves
                // a module's imports from the working directory, so the
                // handlers' `../../../guest-sdk/js/wasmserve.js` needs the
                // workspace there and the source given relative to it.
                run(Command::new(&tool)
                    .current_dir(workspace)
                    .arg("--wit")
                    .arg(&wit)
                    .args(["--world-name", "handler", "-d", "http", "-d", "fetch-event"])
                    .arg("-o")
                    .arg(out_dir.join(format!("{handler}-js.wasm")))
                    .arg(format!("handlers/js/{handler}/{handler}.js")))?;
            }
        }
    }
    Ok(())
}

/// Whether the npm package installed under `prefix` is componentize-js
/// `version`.
fn js_installed(prefix: &Path, version: &str) -> bool {
    let manifest = prefix.join("node_modules/@bytecodealliance/componentize-js/package.json");
    fs::read_to_string(manifest)
        .is_ok_and(|text| text.contains(&format!("\"version\": \"{version}\"")))
}

/// Whether the venv holds `requirement` (`name==version`): pip leaves a
/// `name-version.dist-info` folder (with `_` for `-`) in site-packages.
fn python_installed(venv: &Path, requirement: &str) -> bool {
    let Some((name, version)) = requirement.split_once("==") else {
        return false;
    };
    let dist_info = format!("{}-{version}.dist-info", name.replace('-', "_"));
    fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|python| {
            python
                .path()
                .join("site-packages")
                .join(&dist_info)
                .is_dir()
        })
}

/// Runs `command`; its failure, with the end of what it printed, as the error.
fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|err| format!("cannot run {shown}: {err}"))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = said.lines().rev().take(3).collect();
    Err(format!(
        "{shown} failed ({}): {}",
        output.status,
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}
