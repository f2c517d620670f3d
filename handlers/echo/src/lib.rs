//! `echo`: sends back every byte it receives until the client closes.
//!
//! It serves datagrams unchanged: a datagram's payload comes in one `recv`
//! (the host's 64 KiB cap holds any UDP datagram) and goes back in one
//! `sendall`, i.e. one reply datagram.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p echo`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/echo.wasm --tcp 8100`

use wasmserve_sdk::{Error, Request};

fn handle(request: Request) -> Result<(), Error> {
    loop {
        let data = request.recv(Request::MAX_RECV)?;
        if data.is_empty() {
            return Ok(());
        }
        request.sendall(&data)?;
    }
}

wasmserve_sdk::export_handler!(handle);
