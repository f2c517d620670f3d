//! The network layer: listen addresses and transport names, binding
//! sockets of every transport (inherited ones too), and taking connections
//! and datagrams off them. It knows nothing of handlers or services.

mod accounts;
mod addr;
mod allow;
mod datagram;
mod inherited;
mod ip_net;
mod listener;
mod proxy_header;
mod tls;
mod unix_file;

pub(crate) use accounts::{Account, become_user, group, user};
pub(crate) use addr::{ListenAddr, ListenSpec, Transport, socket_addr_text};
pub(crate) use allow::{AllowEntry, AllowRule};
pub(crate) use datagram::{DatagramReply, Incoming, ReceivedDatagram, TlsConnection, unix_path};
pub(crate) use inherited::{is_connection, is_socket, systemd_fds};
pub(crate) use ip_net::{IpNet, canonical};
pub(crate) use listener::{ListenOptions, Listener, MAX_UDP_PAYLOAD, bind_error};
pub(crate) use proxy_header::read_proxy_header;
pub(crate) use tls::{TlsInfo, TlsSpec, TlsTerminator, relay};
pub(crate) use unix_file::parse_mode;
