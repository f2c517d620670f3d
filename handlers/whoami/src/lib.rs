//! `whoami`: tells the client what the request looks like from the handler's
//! side, in one line (one datagram on datagram transports):
//!
//! ```text
//! transport=tcp peer=127.0.0.1:50000 local=127.0.0.1:8100
//! ```
//!
//! On a connection the host terminated TLS for (`--tls-cert`), the line
//! goes on with what TLS negotiated:
//!
//! ```text
//! transport=tcp peer=127.0.0.1:50000 local=127.0.0.1:8443 tls=TLSv1.3 alpn=- sni=localhost client=CN=alice
//! ```
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p whoami`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/whoami.wasm --tcp 8100 --udp 8100`

use wasmserve_sdk::{Error, Request};

fn handle(request: Request) -> Result<(), Error> {
    let tls = match request.tls() {
        Some(tls) => format!(
            " tls={} alpn={} sni={} client={}",
            tls.version,
            tls.alpn.as_deref().unwrap_or("-"),
            tls.server_name.as_deref().unwrap_or("-"),
            tls.client_subject.as_deref().unwrap_or("-")
        ),
        None => String::new(),
    };
    let line = format!(
        "transport={} peer={} local={}{tls}\n",
        request.transport(),
        request.peer_addr(),
        request.local_addr()
    );
    request.sendall(line.as_bytes())
}

wasmserve_sdk::export_handler!(handle);
