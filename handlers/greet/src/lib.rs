//! `greet`: writes `Thank you for connecting` and closes, like the classic
//! Python `socketserver` example.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p greet`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/greet.wasm --tcp 8100`

use wasmserve_sdk::{Error, Request};

/// What every client receives.
const GREETING: &[u8] = b"Thank you for connecting";

fn handle(request: Request) -> Result<(), Error> {
    request.sendall(GREETING)
}

wasmserve_sdk::export_handler!(handle);
