//! The plaintext side of a TLS connection: the host relays between the
//! TLS stream and one end of a Unix socket pair, and the handler is served
//! on the other end, exactly as on a plain connection (readiness, idle
//! timeout, lingering close all unchanged). Each direction copies through
//! one 16 KiB buffer and gives up when a read or write makes no progress
//! for the idle timeout, so a client that stops reading cannot hold the
//! relay (or the bytes in it) for ever. When the client resets the
//! connection (or its keepalive probes go unanswered), the relay says so
//! through a token, since the plaintext end alone cannot tell a reset from
//! a half-close.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// The relay's buffer, per direction.
const CHUNK: usize = 16 * 1024;

/// Starts relaying `tls`; returns the plaintext end for the handler, and
/// a token cancelled when the client resets the connection.
pub(crate) fn relay(
    tls: TlsStream<TcpStream>,
    idle: Duration,
) -> std::io::Result<(UnixStream, CancellationToken)> {
    let (guest_end, host_end) = UnixStream::pair()?;
    let reset = CancellationToken::new();
    let client_reset = reset.clone();
    tokio::spawn(async move {
        let (tls_read, tls_write) = tokio::io::split(tls);
        let (plain_read, plain_write) = host_end.into_split();
        tokio::join!(
            copy(tls_read, plain_write, idle, Some(&client_reset)),
            copy(plain_read, tls_write, idle, None)
        );
    });
    Ok((guest_end, reset))
}

/// Copies `from` to `to` until the end (then shuts `to` down for
/// writing), an error (cancelling `on_error`, if given), or `idle` without
/// progress.
async fn copy<R, W>(mut from: R, mut to: W, idle: Duration, on_error: Option<&CancellationToken>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let read = match tokio::time::timeout(idle, from.read(&mut buf)).await {
            Ok(Ok(read)) => read,
            Ok(Err(_)) => {
                if let Some(token) = on_error {
                    token.cancel();
                }
                break;
            }
            Err(_) => break,
        };
        if read == 0 {
            break;
        }
        match tokio::time::timeout(idle, to.write_all(&buf[..read])).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
    let _ = tokio::time::timeout(idle, to.shutdown()).await;
}
