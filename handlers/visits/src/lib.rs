//! `visits`: greets each client with its visitor number, counted by an
//! atomic increment in the service's key-value bucket, so concurrent
//! connections (on one host or, with `--state redis://…`, many) never get
//! the same number.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p visits`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/visits.wasm --tcp 8100`

use wasmserve_sdk::{Error, Request, kv};

fn handle(request: Request) -> Result<(), Error> {
    let visitor = kv::open("default")?.increment("visits", 1)?;
    request.sendall(format!("you are visitor #{visitor}\n").as_bytes())
}

wasmserve_sdk::export_handler!(handle);
