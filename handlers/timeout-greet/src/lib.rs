//! `timeout-greet`: asks for a name and waits up to `timeout` for it — the
//! race of a read and a timer, written with the async SDK. It answers
//! `hello NAME`, or `too slow, bye` when the timer wins.
//!
//! The `timeout` setting is seconds (`--set timeout=2.5`) or milliseconds
//! (`--set timeout=500ms`); 10 seconds by default.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p timeout-greet`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/timeout_greet.wasm --tcp 8100 --set timeout=5`

use std::time::Duration;
use wasmserve_sdk::Error;

use wasmserve_sdk::aio::{FutureExt, Request};

/// How long a client has to answer when no `timeout` is set.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

async fn handle(request: Request) -> Result<(), Error> {
    let timeout = wasmserve_sdk::duration_setting("timeout").unwrap_or(DEFAULT_TIMEOUT);
    let timeout = wasmserve_sdk::aio::Duration::from(timeout);
    request.sendall(b"what is your name?\n").await?;
    // The read and the timer race in one `wasi:io/poll`; the loser is
    // dropped. Waiting is not CPU time.
    match request.read_line().timeout(timeout).await {
        Ok(name) => {
            let name = name?;
            let name = name.trim();
            request.sendall(format!("hello {name}\n").as_bytes()).await
        }
        Err(_) => request.sendall(b"too slow, bye\n").await,
    }
}

wasmserve_sdk::export_async_handler!(handle);
