// greet in JavaScript: writes its greeting and closes. The greeting is the
// `greeting` setting (`wasmserve --set greeting=...`), by default
// `Thank you for connecting`.
//
// Build (see docs/javascript.md):
//   componentize-js --wit wit --world-name handler -d http -d fetch-event \
//     -o greet-js.wasm handlers/js/greet/greet.js

import { serve, setting } from "../../../guest-sdk/js/wasmserve.js";

export const handle = serve((request) => {
  request.sendall(setting("greeting") ?? "Thank you for connecting");
});
