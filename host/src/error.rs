//! Errors that library callers may want to match on.
//!
//! Each message is one line that names the thing at fault and, where there is
//! one, the fix. The binary prints them as `error: <message>`.

use std::path::PathBuf;

/// Why a handler component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// The handler path does not exist.
    #[error("handler {path:?} does not exist ({})", not_found_hint(path))]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// An `oci://` handler could not be had from its registry (nor from
    /// the cache).
    #[error("handler {reference}: {problem}")]
    Registry {
        /// The reference given.
        reference: String,
        /// What went wrong, and the fix.
        problem: String,
    },
    /// The handler file exists but could not be read.
    #[error("cannot read handler {path:?}: {cause}")]
    Read {
        /// The path given.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// The file does not start with the WebAssembly magic bytes.
    #[error(
        "handler {path:?} is not a WebAssembly file (it does not start with \\0asm); pass a component built for wasm32-wasip2"
    )]
    NotWasm {
        /// The path given.
        path: PathBuf,
    },
    /// The file is a core WebAssembly module rather than a component.
    #[error(
        "handler {path:?} is a core WebAssembly module, not a component; build it with `--target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule {
        /// The path given.
        path: PathBuf,
    },
    /// wasmtime rejected or failed to compile the component.
    #[error("handler {path:?} is not a valid component: {reason}")]
    Compile {
        /// The path given.
        path: PathBuf,
        /// wasmtime's explanation, on one line.
        reason: String,
    },
    /// The component was built against a contract version newer than the
    /// host's.
    #[error(
        "handler {path:?} needs contract {needs} (it imports `{import}`), but this wasmserve serves contract versions up to {serves}: upgrade wasmserve, or build the handler against {serves} or older"
    )]
    NewerContract {
        /// The path given.
        path: PathBuf,
        /// The import naming the newer version.
        import: String,
        /// The version it names.
        needs: String,
        /// The newest version the host serves.
        serves: &'static str,
    },
    /// The component imports something the host does not provide.
    #[error(
        "handler {path:?} needs an import wasmserve does not provide: {reason}; handlers may import only `{world}` and WASI"
    )]
    UnsupportedImport {
        /// The path given.
        path: PathBuf,
        /// wasmtime's explanation, on one line.
        reason: String,
        /// The world handlers must implement.
        world: &'static str,
    },
    /// The component does not export a compatible `handle` function.
    #[error(
        "handler {path:?} does not export `handle` from world `{world}` (it exports: {exports}); build it with wasmserve-sdk's `export_handler!`"
    )]
    MissingExport {
        /// The path given.
        path: PathBuf,
        /// What the component exports instead, comma separated.
        exports: String,
        /// The world handlers must implement.
        world: &'static str,
    },
}

/// Why a listener could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListenError {
    /// The host part of an address did not resolve.
    #[error("cannot resolve {addr:?}: {cause}")]
    Resolve {
        /// The address as written.
        addr: String,
        /// What the resolver said.
        cause: std::io::Error,
    },
    /// Another socket is bound to the address.
    #[error(
        "cannot listen on {transport} {addr}: address already in use (another process is listening there; pick another port, or 0 for any free one)"
    )]
    AddressInUse {
        /// The transport, e.g. `tcp`.
        transport: &'static str,
        /// The address.
        addr: String,
    },
    /// A Unix socket path exists and is not a socket.
    #[error(
        "cannot listen on {path}: the path exists and is not a socket; remove it or choose another path"
    )]
    NotASocket {
        /// The path.
        path: String,
    },
    /// A Unix socket path is a socket that a live process listens on.
    #[error(
        "cannot listen on {path}: another process is listening on this socket; stop it or choose another path"
    )]
    SocketInUse {
        /// The path.
        path: String,
    },
    /// An inherited descriptor cannot be used as a listener.
    #[error("cannot use inherited descriptor {fd}: {reason}")]
    Inherited {
        /// The descriptor number.
        fd: i32,
        /// What is wrong with it.
        reason: String,
    },
    /// Binding failed for another reason (permissions, address not local, ...).
    #[error("cannot listen on {transport} {addr}: {cause}")]
    Bind {
        /// The transport, e.g. `tcp`.
        transport: &'static str,
        /// The address.
        addr: String,
        /// What the operating system said.
        cause: std::io::Error,
    },
}

/// The example handlers of wasmserve's own repository (`handlers/*`), which
/// a newcomer's path most likely means.
const EXAMPLE_HANDLERS: [&str; 7] = [
    "chat",
    "daytime",
    "echo",
    "greet",
    "time",
    "uppercase",
    "whoami",
];

/// How to get the missing handler at `path`: the build command of the
/// example it names, with where the file lands, or a look at the path.
fn not_found_hint(path: &std::path::Path) -> String {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    match EXAMPLE_HANDLERS.contains(&stem.as_str()) {
        true => format!(
            "{stem} is one of wasmserve's examples: in a clone of wasmserve, `cargo build --release --target wasm32-wasip2 -p {stem}` writes it to target/wasm32-wasip2/release/{stem}.wasm; pass that path"
        ),
        false => "check the path; a relative path is taken from the current directory, or in a config file from the file's directory".to_owned(),
    }
}

/// Flattens an error and its causes (`{:#}`) into one line.
pub(crate) fn one_line(err: &impl std::fmt::Display) -> String {
    let text = format!("{err:#}");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
