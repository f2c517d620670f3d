//! `time`: the Time Protocol (RFC 868). Over TCP it sends the time as one
//! 32-bit big-endian count of seconds since 1900-01-01 00:00 UTC and closes;
//! over UDP every datagram is answered with those four bytes.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p time`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/time.wasm --tcp 8037 --udp 8037`

use std::time::{SystemTime, UNIX_EPOCH};

use wasmserve_sdk::{Error, Request};

/// Seconds from 1900-01-01 to 1970-01-01, the offset RFC 868 gives.
const SECONDS_1900_TO_1970: u64 = 2_208_988_800;

fn handle(request: Request) -> Result<(), Error> {
    let since_1970 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|err| Error::Other(format!("clock before 1970: {err}")))?;
    // The count wraps in 2036, as the RFC's 32 bits do.
    let since_1900 = (since_1970.as_secs() + SECONDS_1900_TO_1970) as u32;
    request.reply(&since_1900.to_be_bytes())
}

wasmserve_sdk::export_handler!(handle);
