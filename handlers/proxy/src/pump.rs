//! Copying both directions at once: one `poll` over whatever each
//! direction waits for (its input to have bytes, or its output to have
//! room), then a `splice` for each direction that can move.

use wasmserve_sdk::wasip2::io::poll;
use wasmserve_sdk::wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasmserve_sdk::{Error, Request};

use crate::upstream::Upstream;

/// The most one splice moves.
const CHUNK: u64 = 64 * 1024;

/// What a direction waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waits {
    /// Bytes (or the end) from its input.
    Input,
    /// Room in its output: its input had bytes the output did not take.
    Output,
    /// Nothing: its input ended and the end was passed on.
    Done,
}

/// One direction: from `input` to `output`.
struct Direction<'a> {
    input: &'a InputStream,
    output: &'a OutputStream,
    waits: Waits,
}

impl Direction<'_> {
    /// Moves what it can; `true` when its input just ended.
    fn pump(&mut self) -> Result<bool, Error> {
        if self.waits == Waits::Done {
            return Ok(false);
        }
        match self.output.splice(self.input, CHUNK) {
            Ok(0) if self.waits == Waits::Input => self.waits = Waits::Output,
            Ok(_) => self.waits = Waits::Input,
            Err(StreamError::Closed) => {
                self.waits = Waits::Done;
                return Ok(true);
            }
            Err(StreamError::LastOperationFailed(err)) => {
                return Err(Error::Other(err.to_debug_string()));
            }
        }
        Ok(false)
    }
}

/// Copies client → upstream and upstream → client until both have ended.
pub(crate) fn both_ways(request: &Request, upstream: &Upstream) -> Result<(), Error> {
    let (client_in, client_out) = request.streams()?;
    let mut up = Direction {
        input: &client_in,
        output: &upstream.output,
        waits: Waits::Input,
    };
    let mut down = Direction {
        input: &upstream.input,
        output: &client_out,
        waits: Waits::Input,
    };
    while up.waits != Waits::Done || down.waits != Waits::Done {
        let pollables: Vec<poll::Pollable> = [&up, &down]
            .iter()
            .filter_map(|direction| match direction.waits {
                Waits::Input => Some(direction.input.subscribe()),
                Waits::Output => Some(direction.output.subscribe()),
                Waits::Done => None,
            })
            .collect();
        let waiting: Vec<&poll::Pollable> = pollables.iter().collect();
        poll::poll(&waiting);
        drop(pollables);
        if up.pump()? {
            // The client finished sending: tell the upstream.
            upstream.shutdown_send();
        }
        if down.pump()? {
            // The upstream finished: the client reads end of stream.
            let _ = client_out.blocking_flush();
            request.shutdown_write()?;
        }
    }
    Ok(())
}
