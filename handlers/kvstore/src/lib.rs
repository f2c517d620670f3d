//! `kvstore`: a Redis-compatible server written as a handler, over the
//! service's key-value bucket and channels. It speaks RESP (what
//! `redis-cli`, `redis-benchmark` and every Redis client speak), with
//! pipelining, Redis's strings, counters, keyspace and expiry commands
//! (`commands/`), PUBLISH, SUBSCRIBE and UNSUBSCRIBE; anything else gets
//! Redis's own error. Keys live in the `data` bucket, their deadlines in
//! the host (contract 0.2.3's `keyspace`): with `--state redis://…` they
//! are stored in a real Redis, with `--state file:PATH` on disk.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p kvstore`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/kvstore.wasm --tcp 6380`
//! Try:   `redis-cli -p 6380 set greeting hello` then `redis-cli -p 6380 get greeting`

mod batch;
mod commands;
mod resp;
mod subscriber;

use wasmserve_sdk::{Error, Request, kv};

use batch::Batch;
use resp::{MAX_BULK, ProtocolError, Replies};
use subscriber::Subscriber;

/// Bytes read at a time.
const READ_SIZE: usize = 64 * 1024;

fn handle(request: Request) -> Result<(), Error> {
    let data = kv::open("data")?;
    let mut input: Vec<u8> = Vec::new();
    let mut subscriber = Subscriber::default();
    let mut out = Replies(Vec::new());
    loop {
        let more = run_all(&data, &mut input, &mut subscriber, &mut out);
        if !out.0.is_empty() {
            request.sendall(&out.0)?;
            out.clear();
        }
        if !more {
            return Ok(());
        }
        let bytes = match subscriber.is_active() {
            false => request.recv(READ_SIZE)?,
            true => match subscriber.wait(&request)? {
                Some(bytes) => bytes,
                None => continue,
            },
        };
        if bytes.is_empty() {
            return Ok(());
        }
        input.extend_from_slice(&bytes);
    }
}

/// Runs every complete command in `input`, pipelined; `false` when the
/// connection should end (QUIT, a protocol error).
fn run_all(
    data: &kv::Bucket,
    input: &mut Vec<u8>,
    subscriber: &mut Subscriber,
    out: &mut Replies,
) -> bool {
    let mut used = 0;
    let mut batch = Batch::default();
    let mut args = Vec::new();
    let more = loop {
        match resp::parse(&input[used..], &mut args) {
            Ok(Some(length)) => {
                used += length;
                let Some(first) = args.first() else { continue };
                // The command's name, upper-cased once for every match below.
                let mut upper = [0; 24];
                let name = upper_name(first, &mut upper);
                if !subscriber.is_active() && batch.take(data, &name, &args, out) {
                    continue;
                }
                batch.flush(data, out);
                match &*name {
                    "QUIT" => {
                        out.simple("OK");
                        break false;
                    }
                    "SUBSCRIBE" | "UNSUBSCRIBE" => subscriber.command(&args, out),
                    "PING" if subscriber.is_active() => subscriber.ping(out),
                    name if subscriber.is_active() => out.error(&format!(
                        "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                        name.to_lowercase()
                    )),
                    _ => commands::run(data, &name, &args, out),
                }
            }
            Ok(None) => break input.len() - used <= MAX_BULK + READ_SIZE,
            Err(ProtocolError(why)) => {
                batch.flush(data, out);
                out.error(&format!("ERR Protocol error: {why}"));
                break false;
            }
        }
    };
    batch.flush(data, out);
    input.drain(..used);
    more
}

wasmserve_sdk::export_handler!(handle);

/// `first` upper-cased: in `buf` when it is short ASCII (every command
/// name), without an allocation; otherwise a new string.
fn upper_name<'a>(first: &[u8], buf: &'a mut [u8; 24]) -> std::borrow::Cow<'a, str> {
    if first.is_ascii()
        && let Some(upper) = buf.get_mut(..first.len())
    {
        upper.copy_from_slice(first);
        upper.make_ascii_uppercase();
        if let Ok(name) = std::str::from_utf8(upper) {
            return std::borrow::Cow::Borrowed(name);
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(first).to_ascii_uppercase())
}
