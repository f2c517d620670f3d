//! `ticker`: full duplex. It sends a numbered line (`tick 1`, `tick 2`, ...)
//! every `interval` while echoing whatever the client sends, interleaved,
//! until the client closes — a handler that waits on its client and a
//! timer at once, written with the async SDK.
//!
//! The `interval` setting is seconds (`--set interval=0.5`) or milliseconds
//! (`--set interval=200ms`); 1 second by default.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p ticker`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/ticker.wasm --tcp 8100 --set interval=1`

use std::time::Duration;
use wasmserve_sdk::Error;

use wasmserve_sdk::aio::{Instant, Request, Timer, or};

/// The tick period when no `interval` is set.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest period allowed: a tick costs a little CPU, and
/// `--max-cpu` counts it while the client stays silent.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What woke the handler.
enum Event {
    /// The client sent bytes (empty: it closed).
    Input(Result<Vec<u8>, Error>),
    /// The next tick is due.
    Tick,
}

async fn handle(request: Request) -> Result<(), Error> {
    let interval = wasmserve_sdk::duration_setting("interval")
        .unwrap_or(DEFAULT_INTERVAL)
        .max(MIN_INTERVAL)
        .into();
    let mut ticks: u64 = 0;
    let mut next = Instant::now() + interval;
    loop {
        // Whichever comes first; the other future is dropped, and a read
        // dropped while waiting loses nothing.
        let event = or(async { Event::Input(request.recv(4096).await) }, async {
            Timer::at(next).wait().await;
            Event::Tick
        })
        .await;
        match event {
            Event::Input(Ok(bytes)) if bytes.is_empty() => return Ok(()),
            Event::Input(Ok(bytes)) => request.sendall(&bytes).await?,
            Event::Input(Err(err)) => return Err(err),
            Event::Tick => {
                ticks += 1;
                request
                    .sendall(format!("tick {ticks}\n").as_bytes())
                    .await?;
                next += interval;
            }
        }
    }
}

wasmserve_sdk::export_async_handler!(handle);
