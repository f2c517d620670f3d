//! `greet`: writes a greeting and closes, like the classic Python
//! `socketserver` example. The greeting is the `greeting` setting
//! (`--set greeting=hello`), or `Thank you for connecting`.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p greet`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/greet.wasm --tcp 8100`

use wasmserve_sdk::{Error, Request};

/// What every client receives when no `greeting` is set.
const DEFAULT_GREETING: &str = "Thank you for connecting";

fn handle(request: Request) -> Result<(), Error> {
    let greeting =
        wasmserve_sdk::setting("greeting").unwrap_or_else(|| DEFAULT_GREETING.to_owned());
    request.sendall(greeting.as_bytes())
}

wasmserve_sdk::export_handler!(handle);
