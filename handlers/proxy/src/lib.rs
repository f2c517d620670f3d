//! `proxy`: an L4 TCP proxy. Each connection goes to one of the upstreams
//! in the `upstreams` setting (`IP:PORT,IP:PORT,...`, each allowed with
//! `--allow-connect`), round-robin across connections (a counter in the
//! service's bucket), skipping upstreams that refuse or do not answer
//! within `--connect-timeout`. The handler only chooses: it hands the
//! connection off (`Request::hand_off`, contract 0.2.2), and the host
//! relays the bytes both ways in native code once `handle` returns, each
//! half-close passed on, with no instance left running.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p proxy`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/proxy.wasm --tcp 8100 --set upstreams=127.0.0.1:8101,127.0.0.1:8102 --allow-connect 127.0.0.1:8101-8102`

use wasmserve_sdk::{Error, Request, kv};

fn handle(request: Request) -> Result<(), Error> {
    let list = wasmserve_sdk::setting("upstreams")
        .ok_or_else(|| Error::Other("no upstreams: --set upstreams=IP:PORT,...".to_owned()))?;
    let upstreams: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    if upstreams.is_empty() {
        return Err(Error::Other("the upstreams setting is empty".to_owned()));
    }
    let turn = kv::open("proxy")?.increment("turn", 1)?;
    let first = usize::try_from(turn).unwrap_or(0) % upstreams.len();
    let mut refused = Vec::new();
    for offset in 0..upstreams.len() {
        let address = upstreams[(first + offset) % upstreams.len()];
        match request.hand_off(address, b"") {
            Ok(()) => {
                if !refused.is_empty() {
                    eprintln!("skipped {}", refused.join("; "));
                }
                return Ok(());
            }
            Err(why) => refused.push(why.to_string()),
        }
    }
    Err(Error::Other(format!(
        "no upstream took the connection: {}",
        refused.join("; ")
    )))
}

wasmserve_sdk::export_handler!(handle);
