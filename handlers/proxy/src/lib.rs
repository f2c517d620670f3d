//! `proxy`: an L4 TCP proxy. Each connection goes to one of the upstreams
//! in the `upstreams` setting (`IP:PORT,IP:PORT,...`, each allowed with
//! `--allow-connect`), round-robin across connections (a counter in the
//! service's bucket), skipping upstreams that refuse. Both directions are
//! copied at once with `splice` between the request's WASI streams and the
//! upstream socket's, so the bytes never pass through guest memory; a
//! half-close is passed on in each direction. `connect_timeout` (default
//! `5s`) bounds each connect; an upstream that does not answer in time is
//! skipped like one that refuses.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p proxy`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/proxy.wasm --tcp 8100 --set upstreams=127.0.0.1:8101,127.0.0.1:8102 --allow-connect 127.0.0.1:8101-8102`

mod pump;
mod upstream;

use std::time::Duration;

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
    let timeout =
        wasmserve_sdk::duration_setting("connect_timeout").unwrap_or(Duration::from_secs(5));
    let turn = kv::open("proxy")?.increment("turn", 1)?;
    let first = usize::try_from(turn).unwrap_or(0) % upstreams.len();
    let mut refused = Vec::new();
    for offset in 0..upstreams.len() {
        let address = upstreams[(first + offset) % upstreams.len()];
        match upstream::Upstream::connect(address, timeout) {
            Ok(upstream) => {
                if !refused.is_empty() {
                    eprintln!("skipped {} (refused)", refused.join(", "));
                }
                return pump::both_ways(&request, &upstream);
            }
            Err(why) => refused.push(format!("{address}: {why}")),
        }
    }
    Err(Error::Other(format!(
        "no upstream took the connection: {}",
        refused.join("; ")
    )))
}

wasmserve_sdk::export_handler!(handle);
