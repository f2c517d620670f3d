//! `echo-streams`: echo over contract 0.2's WASI streams. Each chunk goes
//! from the client back to it with one `blocking-splice` inside the host —
//! one host call per chunk, and the bytes never enter the handler's memory.
//! It serves datagrams too: the input yields the payload, and the write
//! the splice makes is one datagram back.
//!
//! The benchmark harness compares it with `echo` (blocking `read` and
//! `write`) and with an echo built against contract 0.1.1.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p echo-streams`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/echo_streams.wasm --tcp 8100`

use wasmserve_sdk::wasip2::io::streams::StreamError;
use wasmserve_sdk::{Error, Request};

fn handle(request: Request) -> Result<(), Error> {
    let (input, output) = request.streams()?;
    loop {
        match output.blocking_splice(&input, 64 * 1024) {
            Ok(_) => {}
            Err(StreamError::Closed) => return Ok(()),
            Err(StreamError::LastOperationFailed(err)) => {
                return Err(Error::Other(err.to_debug_string()));
            }
        }
    }
}

wasmserve_sdk::export_handler!(handle);
