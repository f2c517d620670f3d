//! `uppercase`: echo, but ASCII letters come back in upper case. The
//! counterpart of `echo` in the hot-swap tests: a swap shows in the bytes.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p uppercase`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/uppercase.wasm --tcp 8100`

use wasmserve_sdk::{Error, Request};

fn handle(request: Request) -> Result<(), Error> {
    loop {
        let mut data = request.recv(Request::MAX_RECV)?;
        if data.is_empty() {
            return Ok(());
        }
        data.make_ascii_uppercase();
        request.sendall(&data)?;
    }
}

wasmserve_sdk::export_handler!(handle);
