//! The native baseline: a plain tokio server doing the handlers' jobs with
//! no Wasm, the ceiling wasmserve is measured against.
//!
//! `native-server echo|greet tcp|udp|unix ADDR` prints
//! `listening <transport> <addr>` like wasmserve, then serves until killed.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const GREETING: &[u8] = b"Thank you for connecting";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [job, transport, addr] = args.as_slice() else {
        anyhow::bail!("usage: native-server echo|greet tcp|udp|unix ADDR");
    };
    let greet = job == "greet";
    match transport.as_str() {
        "tcp" => {
            let listener = tokio::net::TcpListener::bind(addr.as_str()).await?;
            println!("listening tcp {}", listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(serve(stream, greet));
            }
        }
        "unix" => {
            let _ = std::fs::remove_file(addr);
            let listener = tokio::net::UnixListener::bind(addr)?;
            println!("listening unix {addr}");
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(serve(stream, greet));
            }
        }
        "udp" => {
            let socket = Arc::new(tokio::net::UdpSocket::bind(addr.as_str()).await?);
            println!("listening udp {}", socket.local_addr()?);
            let mut buf = vec![0u8; 65_536];
            loop {
                let (len, peer) = socket.recv_from(&mut buf).await?;
                socket.send_to(&buf[..len], peer).await?;
            }
        }
        other => anyhow::bail!("unknown transport {other}"),
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, greet: bool) {
    if greet {
        let _ = stream.write_all(GREETING).await;
        let _ = stream.shutdown().await;
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
