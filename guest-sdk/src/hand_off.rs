//! Handing a connection to an upstream (contract 0.2.2): the handler
//! chooses, the host moves the bytes ([`crate::Request::hand_off`],
//! [`crate::aio::Request::hand_off`]).

use std::fmt;

use crate::pending::Pending;
use crate::wit;

/// Why [`crate::Request::hand_off`] failed. The request is still the
/// handler's: it may try another upstream, or answer the client itself.
///
/// ```no_run
/// use wasmserve_sdk::HandOffError;
/// # fn handle(request: wasmserve_sdk::Request) {
/// match request.hand_off("127.0.0.1:6379", b"") {
///     Ok(()) => {}
///     Err(HandOffError::Refused(why) | HandOffError::TimedOut(why)) => eprintln!("upstream down: {why}"),
///     Err(other) => eprintln!("cannot hand off: {other}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOffError {
    /// The address is not an `IP:PORT` (host names are not looked up).
    InvalidAddress(String),
    /// `--allow-connect` does not list the address, or the request used
    /// its `--max-outbound` sockets.
    Denied(String),
    /// The upstream refused the connection or could not be reached.
    Refused(String),
    /// The upstream did not answer within `--connect-timeout` (the text
    /// names the address).
    TimedOut(String),
    /// This request cannot be handed off: a datagram, or handed off
    /// already, or `first` is over 64 KiB.
    Unsupported(String),
}

impl fmt::Display for HandOffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidAddress(why) | Self::Denied(why) | Self::Unsupported(why) => {
                f.write_str(why)
            }
            Self::Refused(why) => write!(f, "upstream refused: {why}"),
            Self::TimedOut(address) => write!(f, "{address}: no answer within --connect-timeout"),
        }
    }
}

impl std::error::Error for HandOffError {}

impl From<HandOffError> for crate::Error {
    fn from(err: HandOffError) -> Self {
        crate::Error::Other(err.to_string())
    }
}

/// Hands `request` to `upstream`: `first`, then what the SDK read ahead
/// and the handler has not consumed, go to the upstream ahead of the
/// client's next bytes.
pub(crate) fn hand_off(
    request: &wit::Request,
    pending: &Pending,
    upstream: &str,
    first: &[u8],
) -> Result<(), HandOffError> {
    let mut ahead = first.to_vec();
    if let Some(unread) = pending.take(usize::MAX) {
        ahead.extend_from_slice(&unread);
    }
    request
        .hand_off(upstream, &ahead)
        .map_err(|err| match err {
            wit::HandOffError::InvalidAddress(why) => HandOffError::InvalidAddress(why),
            wit::HandOffError::Denied(why) => HandOffError::Denied(why),
            wit::HandOffError::Refused(why) => HandOffError::Refused(why),
            wit::HandOffError::TimedOut => HandOffError::TimedOut(upstream.to_owned()),
            wit::HandOffError::Unsupported(why) => HandOffError::Unsupported(why),
        })
        .inspect_err(|_| {
            // Still the handler's to read: put back what was read ahead.
            pending.push(ahead.get(first.len()..).unwrap_or_default());
        })
}
