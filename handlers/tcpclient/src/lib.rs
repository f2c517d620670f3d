//! `tcpclient`: the socketserver tutorial's client, as a handler. Each line
//! a client sends is relayed to an upstream line server (the `upstream`
//! setting, an `IP:PORT` the operator allows with `--allow-connect`), and
//! the upstream's answer line is sent back.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p tcpclient`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/tcpclient.wasm --tcp 8100 --set upstream=127.0.0.1:8101 --allow-connect 127.0.0.1:8101`

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::TcpStream;

use wasmserve_sdk::Request;

fn handle(request: Request) -> std::io::Result<()> {
    let upstream = wasmserve_sdk::setting("upstream")
        .ok_or_else(|| std::io::Error::other("no upstream: --set upstream=IP:PORT"))?;
    // Plain std: wasmserve grants the socket if the operator allowed it.
    let stream =
        TcpStream::connect(upstream.as_str()).map_err(|err| connect_error(&upstream, err))?;
    let mut answers = BufReader::new(&stream);
    for line in request.lines() {
        let line = line?;
        (&stream).write_all(format!("{line}\n").as_bytes())?;
        let mut answer = String::new();
        if answers.read_line(&mut answer)? == 0 {
            request.sendall(b"upstream closed\n")?;
            return Ok(());
        }
        request.sendall(answer.as_bytes())?;
    }
    Ok(())
}

/// Names why a connect failed in words. The guest's `std` numbers errors as
/// WASI does, where access denied is errno 2 — "no such file" to anyone
/// reading it as a Linux errno — so the number is left out.
fn connect_error(upstream: &str, err: std::io::Error) -> std::io::Error {
    let why = match err.kind() {
        ErrorKind::PermissionDenied => {
            "access denied (the host's --allow-connect does not list it)".to_owned()
        }
        kind => kind.to_string(),
    };
    std::io::Error::new(err.kind(), format!("cannot connect to {upstream}: {why}"))
}

wasmserve_sdk::export_handler!(handle);
