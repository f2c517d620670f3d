//! The native baselines: plain tokio servers doing the handlers' jobs with
//! no Wasm, the ceiling wasmserve is measured against.
//!
//! `native-server echo|greet tcp|udp|unix ADDR [--sharded]` prints
//! `listening <transport> <addr>` like wasmserve, then serves until killed.
//!
//! Two shapes, both as a careful tokio server would be written:
//! - default: one multi-thread runtime (a worker per core, work stealing),
//!   a task per connection — what wasmserve itself is;
//! - `--sharded`: one current-thread runtime per core, each with its own
//!   `SO_REUSEPORT` listener (the kernel spreads connections and datagrams
//!   over them), so a connection never leaves its thread: no work stealing,
//!   no cross-thread wake-ups.
//!
//! Either way: `TCP_NODELAY`, one 64 KiB buffer per connection allocated
//! once, and reads and writes straight on the socket.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, UdpSocket, UnixListener};

const GREETING: &[u8] = b"Thank you for connecting";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (sharded, args): (Vec<&String>, Vec<&String>) =
        args.iter().partition(|arg| *arg == "--sharded");
    let [job, transport, addr] = args.as_slice() else {
        anyhow::bail!("usage: native-server echo|greet tcp|udp|unix ADDR [--sharded]");
    };
    let job = Job {
        greet: job.as_str() == "greet",
        transport: transport.to_string(),
        addr: addr.to_string(),
    };
    if sharded.is_empty() {
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(job.serve(None));
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // The first shard binds (and picks the port for `:0`); the others
    // join it on the same address with SO_REUSEPORT.
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let bound = first.block_on(job.bind(None, true))?;
    let shared_addr = bound.local();
    println!("listening {} {}", job.transport, shared_addr);
    let mut threads = Vec::new();
    for _ in 1..cores {
        let job = job.clone();
        let addr = shared_addr.clone();
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let bound = job.bind(Some(&addr), true).await?;
                job.run(bound).await
            })
        }));
    }
    first.block_on(job.run(bound))?;
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Job {
    greet: bool,
    transport: String,
    addr: String,
}

/// A bound listening socket of one shard.
enum Bound {
    Tcp(TcpListener),
    Unix(UnixListener, String),
    Udp(Arc<UdpSocket>),
}

impl Bound {
    fn local(&self) -> String {
        match self {
            Bound::Tcp(listener) => listener
                .local_addr()
                .map(|addr| addr.to_string())
                .unwrap_or_default(),
            Bound::Unix(_, path) => path.clone(),
            Bound::Udp(socket) => socket
                .local_addr()
                .map(|addr| addr.to_string())
                .unwrap_or_default(),
        }
    }
}

impl Job {
    /// Serves on one multi-thread runtime.
    async fn serve(self, shared: Option<&str>) -> anyhow::Result<()> {
        let bound = self.bind(shared, false).await?;
        println!("listening {} {}", self.transport, bound.local());
        self.run(bound).await
    }

    /// Binds the listener: at `self.addr`, or joining `shared`; `sharded`
    /// lets further shards bind the same address.
    async fn bind(&self, shared: Option<&str>, sharded: bool) -> anyhow::Result<Bound> {
        let addr = shared.unwrap_or(&self.addr);
        Ok(match self.transport.as_str() {
            "tcp" => {
                let addr: SocketAddr = addr.parse()?;
                let socket = match addr {
                    SocketAddr::V4(_) => TcpSocket::new_v4()?,
                    SocketAddr::V6(_) => TcpSocket::new_v6()?,
                };
                socket.set_reuseaddr(true)?;
                socket.set_reuseport(sharded)?;
                socket.bind(addr)?;
                Bound::Tcp(socket.listen(4096)?)
            }
            "unix" => {
                // Unix sockets have no SO_REUSEPORT: the shards share one
                // listening socket.
                let listener = match shared {
                    None => {
                        let _ = std::fs::remove_file(addr);
                        let listener = std::os::unix::net::UnixListener::bind(addr)?;
                        if sharded {
                            let _ = UNIX_LISTENER.set(listener.try_clone()?);
                        }
                        listener
                    }
                    Some(_) => unix_shared(addr)?,
                };
                listener.set_nonblocking(true)?;
                Bound::Unix(UnixListener::from_std(listener)?, addr.to_owned())
            }
            "udp" => {
                let addr: SocketAddr = addr.parse()?;
                let socket = match sharded {
                    true => udp_reuseport(addr)?,
                    false => std::net::UdpSocket::bind(addr)?,
                };
                socket.set_nonblocking(true)?;
                Bound::Udp(Arc::new(UdpSocket::from_std(socket)?))
            }
            other => anyhow::bail!("unknown transport {other}"),
        })
    }

    async fn run(&self, bound: Bound) -> anyhow::Result<()> {
        let greet = self.greet;
        match bound {
            Bound::Tcp(listener) => loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                tokio::spawn(serve(stream, greet));
            },
            Bound::Unix(listener, _) => loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(serve(stream, greet));
            },
            Bound::Udp(socket) => {
                let mut buf = vec![0u8; 65_536];
                loop {
                    let (len, peer) = socket.recv_from(&mut buf).await?;
                    socket.send_to(&buf[..len], peer).await?;
                }
            }
        }
    }
}

/// Another handle on the Unix listener the first shard bound (kept in a
/// process-wide slot): the shards share one socket.
fn unix_shared(path: &str) -> std::io::Result<std::os::unix::net::UnixListener> {
    UNIX_LISTENER
        .get()
        .ok_or_else(|| std::io::Error::other(format!("{path}: not bound yet")))?
        .try_clone()
}

static UNIX_LISTENER: std::sync::OnceLock<std::os::unix::net::UnixListener> =
    std::sync::OnceLock::new();

/// A UDP socket on `addr` with SO_REUSEPORT, so every shard binds it.
fn udp_reuseport(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
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
