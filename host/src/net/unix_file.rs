//! Unix socket files: binding at a path, replacing a stale file left by a
//! dead process, refusing a live one, and removing our own file at exit.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

use super::addr::Transport;
use super::listener::{ListenOptions, Listener, bind_error};
use crate::error::ListenError;

/// Binds a Unix socket at `path`. A stale socket file (nobody listens on
/// it) is replaced; a live socket, or any other kind of file, is refused.
pub(crate) fn bind_unix(
    path: &Path,
    transport: Transport,
    options: &ListenOptions,
) -> Result<Listener, ListenError> {
    let kind = match transport {
        Transport::Unix => Type::STREAM,
        _ => Type::DGRAM,
    };
    let transport = transport.as_str();
    let shown = path.display().to_string();
    remove_stale_socket(path, transport)?;
    let bound = (|| {
        let socket = Socket::new(Domain::UNIX, kind, None)?;
        if let Some(size) = options.recv_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        socket.bind(&SockAddr::unix(path)?)?;
        // From here on the file is ours: remove it if anything below fails.
        let socket_file = SocketFile::created_at(path)?;
        if let Some(mode) = options.unix_mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        if options.unix_owner.is_some() || options.unix_group.is_some() {
            std::os::unix::fs::chown(path, options.unix_owner, options.unix_group)?;
        }
        if kind == Type::STREAM {
            socket.listen(options.backlog)?;
        }
        Listener::adopt(socket, None, Some(socket_file))
    })();
    bound.map_err(|source| bind_error(transport, &shown, source))
}

/// Removes `path` if it is a socket file nobody listens on.
fn remove_stale_socket(path: &Path, transport: &'static str) -> Result<(), ListenError> {
    let shown = path.display().to_string();
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(bind_error(transport, &shown, source)),
    };
    if !metadata.file_type().is_socket() {
        return Err(ListenError::NotASocket { path: shown });
    }
    // A connect that is refused means no process has the socket open.
    let probe = std::os::unix::net::UnixStream::connect(path)
        .map(drop)
        .or_else(|err| match err.raw_os_error() {
            // A datagram socket answers a stream connect with EPROTOTYPE.
            Some(code) if code == PROTOCOL_WRONG_TYPE => {
                std::os::unix::net::UnixDatagram::unbound()?.connect(path)
            }
            _ => Err(err),
        });
    match probe {
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %shown, "replacing stale socket file");
            std::fs::remove_file(path).map_err(|source| bind_error(transport, &shown, source))
        }
        _ => Err(ListenError::SocketInUse { path: shown }),
    }
}

/// `EPROTOTYPE` on Linux: a stream connect to a datagram socket.
const PROTOCOL_WRONG_TYPE: i32 = 91;

/// A socket file this process created; removed on drop if it is still the
/// same file (another server may have replaced it since).
#[derive(Debug)]
pub(crate) struct SocketFile {
    /// Where the file is.
    path: PathBuf,
    /// Its device and inode when it was created, to recognise it later.
    identity: (u64, u64),
}

impl SocketFile {
    fn created_at(path: &Path) -> std::io::Result<Self> {
        let metadata = std::fs::symlink_metadata(path)?;
        Ok(Self {
            path: path.to_owned(),
            identity: (metadata.dev(), metadata.ino()),
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let same_file = std::fs::symlink_metadata(&self.path)
            .map(|metadata| (metadata.dev(), metadata.ino()) == self.identity)
            .unwrap_or(false);
        if same_file && let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), cause = %err, "cannot remove socket file");
        }
    }
}

/// An octal file mode: `660`, `0660` or `0o660`.
pub(crate) fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| format!("expected an octal mode such as 660 or 0o600, got {text:?}"))
}
