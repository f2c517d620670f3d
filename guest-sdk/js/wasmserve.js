// The wasmserve SDK for JavaScript handlers (contract 0.2.4, built with
// componentize-js / StarlingMonkey). A handler module imports what it uses
// from this file and exports `handle = serve(fn)`:
//
//     import { serve } from "./wasmserve.js";
//     export const handle = serve((request) => {
//       for (let data; (data = request.recv()).length > 0; ) request.sendall(data);
//     });
//
// The style is blocking: `recv`, `readline` and `sendall` wait for the
// client, and `waitAny` waits on several things at once (the client, a
// timer, a subscription) in one `wasi:io/poll` call. Waiting is not CPU
// time. `console.log` and `console.error` reach the host's log, under the
// connection's span. Each connection (or datagram) runs in a fresh instance.

import { poll } from "wasi:io/poll@0.2.12";
import { subscribeDuration } from "wasi:clocks/monotonic-clock@0.2.12";
import { get } from "wasmserve:handler/config@0.2.4";
import { open } from "wasi:keyvalue/store@0.2.0-draft2";
import { Cas, increment, swap } from "wasi:keyvalue/atomics@0.2.0-draft2";
import {
  publish as publishMessage,
  subscribe as subscribeTopic,
} from "wasmserve:handler/channels@0.2.4";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The most bytes one read asks the host for (the host's own cap). */
const MAX_READ = 65536;

/** `text` (a string) as UTF-8 bytes; bytes are passed through.
 * Example: `request.sendall(bytes("hello\n"))` */
export function bytes(text) {
  return typeof text === "string" ? encoder.encode(text) : text;
}

/** UTF-8 `data` as a string.
 * Example: `const name = text(request.recv()).trim();` */
export function text(data) {
  return decoder.decode(data);
}

/** The operator's setting `name` (`wasmserve --set name=value`), or `undefined`.
 * Example: `const greeting = setting("greeting") ?? "hello";` */
export function setting(name) {
  return get(name);
}

/** Why a request operation failed: `kind` is `closed`, `timed-out` or `other`.
 * Example: `catch (err) { if (err instanceof RequestError && err.kind === "closed") return; }` */
export class RequestError extends Error {
  constructor(kind, message) {
    super(message ?? kind);
    this.kind = kind;
  }
}

/** The host's error (a thrown component error) as a `RequestError`. */
function requestError(err) {
  const payload = err?.payload ?? err;
  if (payload?.tag === "closed") return new RequestError("closed", "connection closed");
  if (payload?.tag === "timed-out") return new RequestError("timed-out", "timed out (--idle-timeout)");
  return new RequestError("other", String(payload?.val ?? err?.message ?? err));
}

/** Runs `call`, turning the host's errors into `RequestError`s. */
function host(call) {
  try {
    return call();
  } catch (err) {
    throw requestError(err);
  }
}

/** One connection (or one datagram), lent to the handler.
 * Example: `const line = request.readline();` */
export class Request {
  constructor(inner) {
    this.inner = inner;
    // What `readline` read past its line, handed out first by every read.
    this.buffered = new Uint8Array(0);
  }

  /** Up to `max` bytes, waiting for some; an empty array at end of stream
   * (for a datagram: its payload, then empty).
   * Example: `for (let d; (d = request.recv()).length > 0; ) request.sendall(d);` */
  recv(max = MAX_READ) {
    if (this.buffered.length > 0) {
      const data = this.buffered.subarray(0, max);
      this.buffered = this.buffered.subarray(data.length);
      return data;
    }
    return host(() => this.inner.read(Math.max(1, Math.min(max, MAX_READ))));
  }

  /** Like `recv`, but gives up after `ms` milliseconds: `null` then.
   * Example: `const name = request.recvTimeout(5000);` */
  recvTimeout(ms, max = MAX_READ) {
    if (this.buffered.length > 0) return this.recv(max);
    const deadline = timer(ms);
    for (;;) {
      const data = host(() => this.inner.tryRead(Math.max(1, Math.min(max, MAX_READ))));
      if (data !== undefined) return data;
      // A readiness may be reported before the bytes are there: read again.
      if (waitAny([this.readable(), deadline]) === 1) return null;
    }
  }

  /** The next line with its `\n` as a string (the last one may lack it),
   * `""` at end of stream; `timeoutMs` gives up after that long (`null`).
   * Example: `while ((line = request.readline()) !== "") { ... }` */
  readline(timeoutMs) {
    const deadline = timeoutMs === undefined ? undefined : timer(timeoutMs);
    let pending = this.buffered;
    this.buffered = new Uint8Array(0);
    for (;;) {
      const end = pending.indexOf(10);
      if (end >= 0) {
        this.buffered = pending.subarray(end + 1);
        return text(pending.subarray(0, end + 1));
      }
      let data = host(() => this.inner.tryRead(MAX_READ));
      if (data === undefined) {
        const waiting = deadline === undefined ? [this.readable()] : [this.readable(), deadline];
        if (waitAny(waiting) === 1) {
          this.buffered = pending;
          return null;
        }
        continue;
      }
      if (data.length === 0) return text(pending);
      const joined = new Uint8Array(pending.length + data.length);
      joined.set(pending);
      joined.set(data, pending.length);
      pending = joined;
    }
  }

  /** Sends every byte of `data` (bytes or a string); on a datagram
   * transport, one datagram back to the sender.
   * Example: `request.sendall("hello\n");` */
  sendall(data) {
    host(() => this.inner.write(bytes(data)));
  }

  /** Half-closes the connection: the client reads end of stream.
   * Example: `request.shutdownWrite();` */
  shutdownWrite() {
    host(() => this.inner.shutdownWrite());
  }

  /** A pollable ready when the client has sent something (or gone), for `waitAny`.
   * Example: `if (waitAny([request.readable(), sub.pollable()]) === 0) { ... }` */
  readable() {
    return this.inner.subscribeReadable();
  }

  /** The peer's address, e.g. `"127.0.0.1:50000"`.
   * Example: `console.log("connection from", request.peerAddr());` */
  peerAddr() {
    return this.inner.peerAddr();
  }

  /** `"tcp"`, `"udp"`, `"unix-stream"` or `"unix-datagram"`.
   * Example: `if (request.transport() === "udp") { ... }` */
  transport() {
    return this.inner.transport();
  }

  /** What TLS negotiated when the host terminated it, else `undefined`.
   * Example: `const who = request.tls()?.clientSubject;` */
  tls() {
    return this.inner.tls();
  }

  /** Hands the connection to `upstream` (an `IP:PORT` `--allow-connect`
   * lists): the host relays it once the handler returns. `first`, then what
   * `readline` read ahead, go first. Throws an `Error` naming why not; the
   * request is then still the handler's.
   * Example: `request.handOff("127.0.0.1:6379");` */
  handOff(upstream, first = new Uint8Array(0)) {
    const ahead = bytes(first);
    const all = new Uint8Array(ahead.length + this.buffered.length);
    all.set(ahead);
    all.set(this.buffered, ahead.length);
    try {
      this.inner.handOff(upstream, all);
    } catch (err) {
      const payload = err?.payload ?? err;
      throw new Error(payload?.tag === "timed-out" ? `${upstream}: no answer within --connect-timeout` : String(payload?.val ?? err));
    }
    this.buffered = new Uint8Array(0);
  }
}

/** Waits until one of `pollables` is ready; the index of the first ready one.
 * Example: `const which = waitAny([request.readable(), timer(1000)]);` */
export function waitAny(pollables) {
  const ready = poll(pollables);
  return ready[0];
}

/** A pollable ready after `ms` milliseconds, for `waitAny`.
 * Example: `waitAny([request.readable(), timer(5000)])` */
export function timer(ms) {
  return subscribeDuration(BigInt(Math.max(0, Math.round(ms))) * 1000000n);
}

/** Sleeps `ms` milliseconds (no CPU time).
 * Example: `sleep(100);` */
export function sleep(ms) {
  poll([timer(ms)]);
}

/** A key-value bucket of the service (`name` is usually `"default"`):
 * values are bytes, counters their decimal text.
 * Example: `const n = openBucket("default").increment("visits");` */
export function openBucket(name) {
  return new Bucket(host(() => open(name)));
}

/** A bucket (`openBucket`). */
export class Bucket {
  constructor(inner) {
    this.inner = inner;
  }

  /** The value of `key` as bytes, or `undefined`.
   * Example: `const v = bucket.get("greeting");` */
  get(key) {
    return host(() => this.inner.get(key));
  }

  /** Sets `key` to `value` (bytes or a string).
   * Example: `bucket.set("greeting", "hi");` */
  set(key, value) {
    host(() => this.inner.set(key, bytes(value)));
  }

  /** Removes `key` (no error if absent).
   * Example: `bucket.delete("alice");` */
  delete(key) {
    host(() => this.inner.delete(key));
  }

  /** Adds `delta` (default 1) to the counter `key` atomically; the new value as a number.
   * Example: `const visitor = bucket.increment("visits");` */
  increment(key, delta = 1) {
    return Number(host(() => increment(this.inner, key, BigInt(delta))));
  }

  /** Sets `key` to `value` only if it holds nothing yet; whether it did
   * (a compare-and-swap: two clients cannot both claim it).
   * Example: `if (!members.claim("alice", "7")) request.sendall("taken\n");` */
  claim(key, value) {
    const cas = host(() => Cas.new(this.inner, key));
    if (host(() => cas.current()) !== undefined) return false;
    try {
      swap(cas, bytes(value));
      return true;
    } catch {
      return false;
    }
  }

  /** Every key, in pages the host hands out.
   * Example: `const names = bucket.keys().sort();` */
  keys() {
    const keys = [];
    let cursor;
    do {
      const page = host(() => this.inner.listKeys(cursor));
      keys.push(...page.keys);
      cursor = page.cursor;
    } while (cursor !== undefined);
    return keys;
  }
}

/** Publishes `payload` (bytes or a string) to every subscriber of `topic`.
 * Example: `publish("room", "alice: hi\n");` */
export function publish(topic, payload) {
  host(() => publishMessage(topic, bytes(payload)));
}

/** Subscribes to `topic`: messages published after this, for `tryReceive`
 * and `waitAny([sub.pollable(), ...])`.
 * Example: `const room = subscribe("room");` */
export function subscribe(topic) {
  return new Subscription(host(() => subscribeTopic(topic)));
}

/** A subscription (`subscribe`). */
export class Subscription {
  constructor(inner) {
    this.inner = inner;
  }

  /** The next message (`{ topic, payload, lost }`), or `undefined` if none is waiting.
   * Example: `for (let m; (m = room.tryReceive()) !== undefined; ) request.sendall(m.payload);` */
  tryReceive() {
    const message = host(() => this.inner.tryReceive());
    return message === undefined ? undefined : { ...message, lost: Number(message.lost) };
  }

  /** A pollable ready when a message is waiting, for `waitAny`.
   * Example: `waitAny([request.readable(), room.pollable()])` */
  pollable() {
    return this.inner.subscribe();
  }
}

/** Makes `fn(request)` the component's `handle` export: `fn` gets a
 * `Request`; an exception becomes the error the host logs (a client that
 * went away ends the request quietly).
 * Example: `export const handle = serve((request) => request.sendall("hi\n"));` */
export function serve(fn) {
  return (inner) => {
    try {
      fn(new Request(inner));
    } catch (err) {
      if (err instanceof RequestError && err.kind === "closed") return;
      throw String(err?.message ?? err);
    }
  };
}
