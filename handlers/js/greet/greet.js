// greet in JavaScript: writes its greeting and closes. The greeting is the
// `greeting` setting (`wasmserve --set greeting=...`), by default
// `Thank you for connecting`.
//
// Build (see docs/javascript.md):
//   jco componentize "$PWD/handlers/js/greet/greet.js" --wit "$PWD/wit/0.1.1" --world-name handler \
//     --backend quickjs --backend-qjs-stub-wasi --backend-qjs-disable-async -o greet-js.wasm

import { get } from "wasmserve:handler/config@0.1.1";

export function handle(request) {
  const greeting = get("greeting") ?? "Thank you for connecting";
  request.write(utf8(greeting));
}

// QuickJS has no TextEncoder: encode the string as UTF-8 by hand.
function utf8(text) {
  const bytes = [];
  for (const char of text) {
    let code = char.codePointAt(0);
    if (code < 0x80) {
      bytes.push(code);
    } else if (code < 0x800) {
      bytes.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    } else {
      bytes.push(
        0xf0 | (code >> 18),
        0x80 | ((code >> 12) & 0x3f),
        0x80 | ((code >> 6) & 0x3f),
        0x80 | (code & 0x3f),
      );
    }
  }
  return new Uint8Array(bytes);
}
