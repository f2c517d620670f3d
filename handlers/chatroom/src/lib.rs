//! `chatroom`: one room for every client of the service. Each line a client
//! sends goes to every other client as `NAME: line`; `/nick NAME` renames,
//! `/who` lists the members, `/quit` leaves; joins, leaves and renames are
//! announced as `* …` lines.
//!
//! Members are keys of the `members` bucket (shared state); lines travel on
//! the `room` channel. With `--state redis://HOST:PORT` several wasmserve
//! processes form one room.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p chatroom`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/chatroom.wasm --tcp 8100`

mod member;

use wasmserve_sdk::wasip2::io::poll;
use wasmserve_sdk::{Error, Request, channels};

use member::Member;

/// The channel every line travels on.
const ROOM: &str = "room";
/// The longest line a client may send; a longer one ends its session.
const MAX_LINE: usize = 4096;

fn handle(request: Request) -> Result<(), Error> {
    let room = channels::subscribe(ROOM)?;
    let mut me = Member::join()?;
    request.sendall(
        format!(
            "* welcome, you are {}; /nick NAME, /who, /quit\n",
            me.name()
        )
        .as_bytes(),
    )?;
    let served = serve(&request, &room, &mut me);
    me.leave()?;
    served
}

/// Relays the room to the client and the client's lines to the room,
/// until the client leaves.
fn serve(request: &Request, room: &channels::Subscription, me: &mut Member) -> Result<(), Error> {
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let (readable, message) = (request.subscribe_readable(), room.pollable());
        poll::poll(&[&readable, &message]);
        while let Some(message) = room.try_receive()? {
            if message.lost > 0 {
                request.sendall(format!("* (you missed {} lines)\n", message.lost).as_bytes())?;
            }
            if let Some(text) = me.heard(&message.payload) {
                request.sendall(text)?;
            }
        }
        let Some(bytes) = request.try_recv(MAX_LINE)? else {
            continue;
        };
        if bytes.is_empty() {
            return Ok(());
        }
        partial.extend_from_slice(&bytes);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if !me.said(request, line.trim_end_matches(['\r', '\n']))? {
                return Ok(());
            }
        }
        if partial.len() > MAX_LINE {
            request.sendall(b"* line too long, bye\n")?;
            return Ok(());
        }
    }
}

wasmserve_sdk::export_handler!(handle);
