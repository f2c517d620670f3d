//! Connecting to an upstream with `wasi:sockets` directly, to get its
//! WASI streams (which `splice` needs).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use wasmserve_sdk::wasip2::clocks::monotonic_clock;
use wasmserve_sdk::wasip2::io::poll;

use wasmserve_sdk::wasip2::io::streams::{InputStream, OutputStream};
use wasmserve_sdk::wasip2::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasmserve_sdk::wasip2::sockets::tcp::{ShutdownType, TcpSocket};
use wasmserve_sdk::wasip2::sockets::{instance_network, tcp_create_socket};

/// A connected upstream: its socket and streams.
pub(crate) struct Upstream {
    // Field order is drop order: the streams before their socket.
    pub(crate) input: InputStream,
    pub(crate) output: OutputStream,
    socket: TcpSocket,
}

impl Upstream {
    /// Connects to `address` (`IP:PORT`), waiting for the handshake at most
    /// `timeout`.
    pub(crate) fn connect(address: &str, timeout: Duration) -> Result<Self, String> {
        let addr: SocketAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is not IP:PORT"))?;
        let (family, remote) = match addr.ip() {
            IpAddr::V4(ip) => {
                let [a, b, c, d] = ip.octets();
                (
                    IpAddressFamily::Ipv4,
                    IpSocketAddress::Ipv4(Ipv4SocketAddress {
                        port: addr.port(),
                        address: (a, b, c, d),
                    }),
                )
            }
            IpAddr::V6(ip) => {
                let s = ip.segments();
                (
                    IpAddressFamily::Ipv6,
                    IpSocketAddress::Ipv6(Ipv6SocketAddress {
                        port: addr.port(),
                        address: (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
                        flow_info: 0,
                        scope_id: 0,
                    }),
                )
            }
        };
        let socket = tcp_create_socket::create_tcp_socket(family).map_err(|e| e.to_string())?;
        let network = instance_network::instance_network();
        socket
            .start_connect(&network, remote)
            .map_err(|e| e.to_string())?;
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let deadline = monotonic_clock::subscribe_duration(nanos);
        loop {
            match socket.finish_connect() {
                Ok((input, output)) => {
                    return Ok(Self {
                        input,
                        output,
                        socket,
                    });
                }
                Err(ErrorCode::WouldBlock) => {
                    let ready = poll::poll(&[&socket.subscribe(), &deadline]);
                    if ready == [1] {
                        return Err(format!("no answer within {timeout:?}"));
                    }
                }
                Err(err) => return Err(err.to_string()),
            }
        }
    }

    /// Half-closes the connection: the upstream reads end of stream.
    pub(crate) fn shutdown_send(&self) {
        let _ = self.socket.shutdown(ShutdownType::Send);
    }
}
