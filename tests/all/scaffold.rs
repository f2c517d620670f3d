//! `wasmserve new`: each language's project builds with the commands it
//! prints, and the handler it builds echoes over real sockets.

use std::io::BufReader;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{Server, WASMSERVE, assert_usage_error, exchange_line};

/// Runs `wasmserve new NAME --lang LANG --dir DIR`, then every `build:`
/// line it printed, as a user would paste them; returns the handler path of
/// the `serve:` line.
fn scaffold_and_build(dir: &Path, name: &str, lang: &str) -> String {
    let output = Command::new(WASMSERVE)
        .args(["new", name, "--lang", lang, "--dir"])
        .arg(dir)
        .output()
        .expect("run wasmserve new");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A Rust project builds into the fixtures' target directory, where
    // wit-bindgen and the rest of its dependencies were built for the same
    // target and profile (seconds instead of half a minute from scratch);
    // what it builds lands where the serve line says, but there.
    let shared_target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("fixtures"))
        .unwrap_or_default();
    for step in printed
        .lines()
        .filter_map(|line| line.trim().strip_prefix("build: "))
    {
        let mut build = Command::new("sh");
        build.arg("-c").arg(step).env_remove("RUSTFLAGS");
        match lang {
            "rust" => build.env("CARGO_TARGET_DIR", &shared_target),
            _ => build.env_remove("CARGO_TARGET_DIR"),
        };
        let built = build
            .stdin(Stdio::null())
            .output()
            .expect("run a build step");
        assert!(
            built.status.success(),
            "`{step}` failed:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let serve = printed
        .lines()
        .find_map(|line| line.trim().strip_prefix("serve: "))
        .unwrap_or_else(|| panic!("no serve line in:\n{printed}"));
    let handler = serve
        .split_whitespace()
        .skip_while(|word| *word != "--handler")
        .nth(1)
        .unwrap_or_else(|| panic!("no --handler in {serve:?}"));
    if lang == "rust" {
        let (project, artifact) = handler
            .split_once("/target/")
            .unwrap_or_else(|| panic!("{handler} is not in the project's target directory"));
        assert_eq!(Path::new(project), dir.join(name), "{handler}");
        let built = shared_target.join(artifact);
        assert!(built.exists(), "{} was not built", built.display());
        return built.to_string_lossy().into_owned();
    }
    assert!(Path::new(handler).exists(), "{handler} was not built");
    handler.to_owned()
}

/// The scaffolded handler echoes lines over TCP; returns its server.
fn assert_echoes(handler: &str) -> Server {
    let server = Server::start(handler, &[]);
    let mut stream = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut stream, "hello"), "hello\n");
    assert_eq!(exchange_line(&mut stream, "again"), "again\n");
    server
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wasmserve-new")
        .tempdir()
        .expect("temp dir")
}

#[test]
fn a_new_rust_handler_builds_and_echoes() {
    let dir = scratch();
    assert_echoes(&scaffold_and_build(dir.path(), "my-echo", "rust"));
}

#[test]
#[cfg_attr(
    wasmserve_no_python,
    ignore = "componentize-py could not be installed or run here (tests/build.rs printed why)"
)]
fn a_new_python_handler_builds_echoes_and_its_first_compile_is_announced() {
    let dir = scratch();
    let handler = scaffold_and_build(dir.path(), "pyecho", "python");
    // A Python handler takes seconds to compile: its first start says so
    // (a cache of its own, so this handler is never found compiled).
    let cache = scratch();
    let cache_dir = cache.path().to_string_lossy().into_owned();
    // It shares the per-function store (CPython's functions, compiled once
    // for every Python handler: a fixture's first start puts them there);
    // the whole handler is still not in that cache.
    drop(Server::start(crate::fixtures::ECHO_PY, &[]));
    let shared_functions = std::path::Path::new(crate::support::CACHE_DIR).join("functions");
    std::fs::create_dir_all(&shared_functions).expect("shared function store");
    std::os::unix::fs::symlink(&shared_functions, cache.path().join("functions"))
        .expect("link the function store");
    let compiling = Server::start(&handler, &["--cache-dir", &cache_dir]);
    compiling.wait_for_log(&["compiling", "pyecho", "(first start; cached afterwards)"]);
    // Most of it came from the function store.
    let compiled = compiling.wait_for_log(&["compiled", "pyecho", "from the function cache"]);
    let counts: Vec<u64> = compiled
        .rsplit('(')
        .next()
        .unwrap_or_default()
        .split(' ')
        .filter_map(|word| word.parse().ok())
        .collect();
    assert!(
        matches!(counts[..], [hits, lookups] if hits * 2 > lookups),
        "most functions should come from the store: {compiled}"
    );
    let mut stream = BufReader::new(compiling.connect());
    assert_eq!(exchange_line(&mut stream, "hello"), "hello\n");
    // A handler from the cache loads in milliseconds: no such line (the
    // first start fills the cache, if no other test did).
    drop(Server::start(crate::fixtures::ECHO, &[]));
    let cached = Server::start(crate::fixtures::ECHO, &[]);
    let mut stream = BufReader::new(cached.connect());
    assert_eq!(exchange_line(&mut stream, "hi"), "hi\n");
    assert!(!cached.log_text().contains("first start; cached afterwards"));
}

#[test]
#[cfg_attr(
    wasmserve_no_js,
    ignore = "componentize-js could not be installed or run here (tests/build.rs printed why)"
)]
fn a_new_javascript_handler_builds_and_echoes() {
    let dir = scratch();
    let server = assert_echoes(&scaffold_and_build(dir.path(), "jsecho", "js"));
    // The template logs each line with `console.log`, and says that goes
    // to the host's log: it does, as the handler's own output.
    server.wait_for_log(&["said hello"]);
    server.wait_for_log(&["said again"]);
}

#[test]
fn new_refuses_a_bad_name_and_an_existing_folder() {
    assert_usage_error(&["new", "../escape"], "expected a name of letters");
    let dir = scratch();
    let dir_arg = dir.path().to_string_lossy().into_owned();
    std::fs::create_dir(dir.path().join("taken")).expect("mkdir");
    crate::support::assert_one_line_error(
        &["new", "taken", "--dir", &dir_arg],
        &["already exists", "choose another name"],
    );
}
