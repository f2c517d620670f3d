//! `wasmserve new NAME [--lang rust|python|js]`: writes a handler project
//! that builds and runs with the commands it prints.
//!
//! Everything the project needs from wasmserve — the WIT contract, and for
//! Rust and Python the guest SDK — is written into it from copies built
//! into this binary, so it builds anywhere, with nothing but the language's
//! own tool from its package registry (crates.io, PyPI, npm).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The WIT contract (0.2), copied into Rust and Python projects, with the
/// WASI packages it uses.
const WIT: &str = include_str!("../../wit/handler.wit");
const WIT_WASI_IO: &str = include_str!("../../wit/deps/io.wit");
const WIT_WASI_CLOCKS: &str = include_str!("../../wit/deps/clocks.wit");
const WIT_CHANNELS: &str = include_str!("../../wit/channels.wit");
const WIT_KEYSPACE: &str = include_str!("../../wit/keyspace.wit");
const WIT_KEYVALUE: &str = include_str!("../../wit/deps/keyvalue.wit");
/// The JavaScript guest SDK, copied into JavaScript projects.
const JS_SDK: &str = include_str!("../../guest-sdk/js/wasmserve.js");
/// The Rust guest SDK's source, copied into Rust projects as a local crate.
const RUST_SDK: [(&str, &str); 10] = [
    (
        "wasmserve-sdk/src/lib.rs",
        include_str!("../../guest-sdk/src/lib.rs"),
    ),
    (
        "wasmserve-sdk/src/request.rs",
        include_str!("../../guest-sdk/src/request.rs"),
    ),
    (
        "wasmserve-sdk/src/pending.rs",
        include_str!("../../guest-sdk/src/pending.rs"),
    ),
    (
        "wasmserve-sdk/src/readiness.rs",
        include_str!("../../guest-sdk/src/readiness.rs"),
    ),
    (
        "wasmserve-sdk/src/aio.rs",
        include_str!("../../guest-sdk/src/aio.rs"),
    ),
    (
        "wasmserve-sdk/src/kv.rs",
        include_str!("../../guest-sdk/src/kv.rs"),
    ),
    (
        "wasmserve-sdk/src/keyspace.rs",
        include_str!("../../guest-sdk/src/keyspace.rs"),
    ),
    (
        "wasmserve-sdk/src/channels.rs",
        include_str!("../../guest-sdk/src/channels.rs"),
    ),
    (
        "wasmserve-sdk/src/tls.rs",
        include_str!("../../guest-sdk/src/tls.rs"),
    ),
    (
        "wasmserve-sdk/src/hand_off.rs",
        include_str!("../../guest-sdk/src/hand_off.rs"),
    ),
];
/// The Python guest SDK, copied into Python projects.
const PYTHON_SDK: &str = include_str!("../../guest-sdk/python/wasmserve_sdk.py");
/// The Python SDK's asyncio loop over `wasi:io/poll`, for async handlers.
const PYTHON_LOOP: &str = include_str!("../../guest-sdk/python/wasmserve_loop.py");
/// The Python SDK's shared state and channels.
const PYTHON_STATE: &str = include_str!("../../guest-sdk/python/wasmserve_state.py");
/// The toolchain pin (with the wasm32-wasip2 target) Rust projects use.
const RUST_TOOLCHAIN: &str = include_str!("../../rust-toolchain.toml");

// The versions of the other languages' tools the project is built with.
include!("../../guest-sdk/toolchains.rs");

/// The language of a new handler project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Language {
    /// Rust with the wasmserve SDK; built by cargo for wasm32-wasip2.
    Rust,
    /// Python with a socketserver-style SDK; built by componentize-py.
    Python,
    /// JavaScript with the wasmserve SDK; built by componentize-js
    /// (StarlingMonkey).
    Js,
}

/// `wasmserve new`: create a handler project.
#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The project's name: a folder of that name is created, and the
    /// handler is built as NAME.wasm (letters, digits, `-` and `_`).
    #[arg(value_name = "NAME", value_parser = parse_name)]
    pub(crate) name: String,

    /// The language to write the handler in.
    #[arg(long, value_enum, default_value_t = Language::Rust)]
    pub(crate) lang: Language,

    /// Where to create the project folder (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
}

/// Why a project could not be created.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScaffoldError {
    /// The folder exists already.
    #[error("{path:?} already exists; choose another name or --dir, or remove it")]
    Exists {
        /// The project folder.
        path: PathBuf,
    },
    /// A file could not be written.
    #[error("cannot write {path:?}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
}

fn parse_name(text: &str) -> Result<String, String> {
    let valid = text.len() <= 64
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match valid {
        true => Ok(text.to_owned()),
        false => Err(format!(
            "expected a name of letters, digits, '-' and '_' that starts with a letter, e.g. my-echo, got {text:?}"
        )),
    }
}

impl NewArgs {
    /// Writes the project and returns what to print: where it is and the
    /// commands that build and serve it.
    pub(crate) fn run(&self) -> Result<String, ScaffoldError> {
        let root = self
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
            .join(&self.name);
        if root.exists() {
            return Err(ScaffoldError::Exists { path: root });
        }
        let files = match self.lang {
            Language::Rust => rust_project(&self.name),
            Language::Python => python_project(&self.name),
            Language::Js => js_project(&self.name),
        };
        for (relative, contents) in &files {
            write_file(&root.join(relative), contents)?;
        }
        Ok(self.instructions(&root))
    }

    /// The lines printed after the project is written.
    fn instructions(&self, root: &Path) -> String {
        // The program as it was invoked: `wasmserve` from the PATH prints
        // `wasmserve`, a path prints that path, so the line runs as shown.
        let wasmserve = std::env::args_os()
            .next()
            .map(|program| program.to_string_lossy().into_owned())
            .unwrap_or_else(|| "wasmserve".to_owned());
        let root = root.display();
        let name = &self.name;
        let (language, steps, wasm) = match self.lang {
            Language::Rust => (
                "Rust",
                vec![format!(
                    "cd {root} && cargo build --release --target wasm32-wasip2"
                )],
                format!(
                    "{root}/target/wasm32-wasip2/release/{}.wasm",
                    name.replace('-', "_")
                ),
            ),
            Language::Python => (
                "Python",
                vec![
                    format!(
                        "cd {root} && python3 -m venv .venv && .venv/bin/pip install {COMPONENTIZE_PY}"
                    ),
                    format!(
                        "cd {root} && .venv/bin/componentize-py -d wit -w handler componentize app -o {name}.wasm"
                    ),
                ],
                format!("{root}/{name}.wasm"),
            ),
            Language::Js => (
                "JavaScript",
                vec![format!("cd {root} && npm install && npm run build")],
                format!("{root}/{name}.wasm"),
            ),
        };
        let mut text = format!("created a {language} handler in {root}\n");
        for step in steps {
            let _ = writeln!(text, "  build: {step}");
        }
        let _ = writeln!(text, "  serve: {wasmserve} --handler {wasm} --tcp 8100");
        let _ = writeln!(
            text,
            "  try:   python3 -c 'import socket; s = socket.create_connection((\"127.0.0.1\", 8100)); s.sendall(b\"hello\\n\"); print(s.recv(1024))'"
        );
        text
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), ScaffoldError> {
    let written = match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent),
        None => Ok(()),
    }
    .and_then(|()| std::fs::write(path, contents));
    written.map_err(|cause| ScaffoldError::Write {
        path: path.to_owned(),
        cause,
    })
}

/// A project's files: path relative to its folder, and contents.
type Files = Vec<(&'static str, String)>;

fn rust_project(name: &str) -> Files {
    let mut files = vec![
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

# A handler is a library compiled to a WebAssembly component.
[lib]
crate-type = ["cdylib"]

[dependencies]
wasmserve-sdk = {{ path = "wasmserve-sdk" }}

[profile.release]
debug = false

# A project of its own, even inside another cargo workspace.
[workspace]
"#
            ),
        ),
        (
            "src/lib.rs",
            format!(
                r#"//! `{name}`: a wasmserve handler. It echoes every line it receives, and
//! logs it with the client's address (what a handler prints goes to the host's log).
//!
//! `request` is one connection (or one datagram): `request.lines()`,
//! `request.read_line()`, `request.recv(n)`, `request.sendall(bytes)`,
//! `request.peer_addr()`, and `&request` is a `std::io::Read + Write`.
//! See the SDK's docs: `cargo doc -p wasmserve-sdk --open`.

use wasmserve_sdk::{{Error, Request}};

fn handle(request: Request) -> Result<(), Error> {{
    for line in request.lines() {{
        let line = line?;
        println!("{{}} sent {{line:?}}", request.peer_addr());
        request.sendall(format!("{{line}}\n").as_bytes())?;
    }}
    Ok(())
}}

wasmserve_sdk::export_handler!(handle);
"#
            ),
        ),
        ("rust-toolchain.toml", RUST_TOOLCHAIN.to_owned()),
        (
            "wasmserve-sdk/Cargo.toml",
            r#"[package]
name = "wasmserve-sdk"
description = "wasmserve's guest SDK (a copy written by `wasmserve new`)"
version = "0.1.0"
edition = "2024"

[dependencies]
wit-bindgen = { version = "0.61", default-features = false, features = ["macros", "realloc", "bitflags"] }
wasip2 = "1.0.4"
wstd = { version = "0.6.8", default-features = false }
futures-lite = { version = "1.13", default-features = false, features = ["std"] }
"#
            .to_owned(),
        ),
        (".gitignore", "/target\n".to_owned()),
    ];
    files.extend(RUST_SDK.map(|(path, text)| (path, text.to_owned())));
    files.extend(contract_files());
    files
}

/// The current contract and the WASI packages it uses, as `wit/`.
fn contract_files() -> Files {
    vec![
        ("wit/handler.wit", WIT.to_owned()),
        ("wit/deps/io.wit", WIT_WASI_IO.to_owned()),
        ("wit/deps/clocks.wit", WIT_WASI_CLOCKS.to_owned()),
        ("wit/deps/keyvalue.wit", WIT_KEYVALUE.to_owned()),
        ("wit/channels.wit", WIT_CHANNELS.to_owned()),
        ("wit/keyspace.wit", WIT_KEYSPACE.to_owned()),
    ]
}

fn python_project(name: &str) -> Files {
    let mut files = vec![
        (
            "app.py",
            format!(
                r#""""{name}: a wasmserve handler, written like a socketserver handler.

It echoes every line it receives, and logs it with the client's address
(what a handler prints goes to the host's log).
"""

from wasmserve_sdk import BaseRequestHandler, serve


class Handler(BaseRequestHandler):
    def handle(self):
        buffered = b""
        while data := self.request.recv(4096):
            buffered += data
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                print(f"{{self.client_address}} sent {{line!r}}")
                self.request.sendall(line + b"\n")
        if buffered:
            self.request.sendall(buffered)


WitWorld = serve(Handler)
"#
            ),
        ),
        ("wasmserve_sdk.py", PYTHON_SDK.to_owned()),
        ("wasmserve_loop.py", PYTHON_LOOP.to_owned()),
        ("wasmserve_state.py", PYTHON_STATE.to_owned()),
        (
            ".gitignore",
            format!("/.venv\n/{name}.wasm\n__pycache__/\n"),
        ),
    ];
    files.extend(contract_files());
    files
}

fn js_project(name: &str) -> Files {
    let mut files = vec![
        (
            "handler.js",
            format!(
                r#"// {name}: a wasmserve handler. It echoes every line it receives, and logs
// it with the client's address (`console.log` goes to the host's log).
//
// `request` is one connection (or one datagram): `request.readline()`
// returns the next line ("" at end of stream), `request.recv()` bytes,
// `request.sendall(text or bytes)` sends all of it. wasmserve.js (the SDK)
// also has timers, key-value buckets and channels; see its comments.

import {{ serve }} from "./wasmserve.js";

export const handle = serve((request) => {{
  for (let line; (line = request.readline()) !== ""; ) {{
    console.log(request.peerAddr(), "said", line.trim());
    request.sendall(line);
  }}
}});
"#
            ),
        ),
        ("wasmserve.js", JS_SDK.to_owned()),
        (
            "package.json",
            format!(
                r#"{{
  "name": "{name}",
  "private": true,
  "type": "module",
  "scripts": {{
    "build": "componentize-js --wit wit --world-name handler -d http -d fetch-event -o {name}.wasm handler.js"
  }},
  "devDependencies": {{
    "@bytecodealliance/componentize-js": "{COMPONENTIZE_JS_VERSION}"
  }}
}}
"#
            ),
        ),
        (".gitignore", format!("/node_modules\n/{name}.wasm\n")),
    ];
    files.extend(contract_files());
    files
}

#[cfg(test)]
#[path = "scaffold_tests.rs"]
mod tests;
