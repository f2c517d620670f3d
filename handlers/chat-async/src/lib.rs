//! `chat-async`: the 0.2 twin of `chat`, the half-duplex chat server of the
//! socketserver tutorials, written with the async SDK. The client sends a
//! line; the server logs it with the client's address and answers it (the
//! `reply` setting, or `you said: <line>`), until the client closes.
//!
//! What async adds: with `--set nudge=SECONDS`, a client silent that long
//! is asked `still there?` (once per silence) — a wait on the client and a
//! timer at once, which the blocking `chat` cannot do.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p chat-async`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/chat_async.wasm --tcp 8100`

use wasmserve_sdk::Error;
use wasmserve_sdk::aio::{Duration, FutureExt, Request};

async fn handle(request: Request) -> Result<(), Error> {
    let peer = request.peer_addr();
    let reply = wasmserve_sdk::setting("reply");
    let nudge = wasmserve_sdk::setting("nudge")
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .map(Duration::from_secs_f64);
    let mut nudged = false;
    loop {
        let line = match nudge {
            Some(nudge) if !nudged => match request.read_line().timeout(nudge).await {
                Ok(line) => line?,
                Err(_) => {
                    request.sendall(b"still there?\n").await?;
                    nudged = true;
                    continue;
                }
            },
            _ => request.read_line().await?,
        };
        if line.is_empty() {
            break;
        }
        nudged = false;
        let line = line.trim_end_matches(['\r', '\n']);
        println!("{peer} wrote: {line}"); // a line of the host's log
        let answer = match &reply {
            Some(reply) => format!("{reply}\n"),
            None => format!("you said: {line}\n"),
        };
        request.sendall(answer.as_bytes()).await?;
    }
    println!("{peer} left");
    Ok(())
}

wasmserve_sdk::export_async_handler!(handle);
