//! `whoami`: tells the client what the request looks like from the handler's
//! side, in one line (one datagram on datagram transports):
//!
//! ```text
//! transport=tcp peer=127.0.0.1:50000 local=127.0.0.1:8100
//! ```
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p whoami`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/whoami.wasm --tcp 8100 --udp 8100`

use wasmserve_sdk::{Error, Request};

fn handle(request: Request) -> Result<(), Error> {
    let line = format!(
        "transport={} peer={} local={}\n",
        request.transport(),
        request.peer_addr(),
        request.local_addr()
    );
    request.sendall(line.as_bytes())
}

wasmserve_sdk::export_handler!(handle);
