//! `chat`: the half-duplex chat server of the socketserver tutorials. The
//! client sends a line; the server logs it with the client's address and
//! answers it; then it is the client's turn again, until it closes.
//!
//! The answer is the `reply` setting (`--set reply=...`) or, by default,
//! `you said: <line>`.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p chat`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/chat.wasm --tcp 8100`

use wasmserve_sdk::{Error, Request};

fn handle(request: Request) -> Result<(), Error> {
    let peer = request.peer_addr();
    let reply = wasmserve_sdk::setting("reply");
    for line in request.lines() {
        let line = line?;
        println!("{peer} wrote: {line}"); // a line of the host's log
        let answer = match &reply {
            Some(reply) => format!("{reply}\n"),
            None => format!("you said: {line}\n"),
        };
        request.sendall(answer.as_bytes())?;
    }
    println!("{peer} left");
    Ok(())
}

wasmserve_sdk::export_handler!(handle);
