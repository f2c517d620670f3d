// echo in JavaScript: sends back every byte until the client closes (or the datagram).
//
// Built against contract 0.1.1 (wit/0.1.1): jco's QuickJS build cannot yet
// componentize 0.2, whose imports share WASI's `pollable` (see docs/javascript.md).
//
// Build (see docs/javascript.md):
//   jco componentize "$PWD/handlers/js/echo/echo.js" --wit "$PWD/wit/0.1.1" --world-name handler \
//     --backend quickjs --backend-qjs-stub-wasi --backend-qjs-disable-async -o echo-js.wasm

export function handle(request) {
  for (;;) {
    const data = request.read(65536);
    if (data.length === 0) return;
    request.write(data);
  }
}
