// echo in JavaScript: sends back every byte until the client closes (or
// the datagram). Contract 0.2.4, built with componentize-js.
//
// Build (see docs/javascript.md):
//   componentize-js --wit wit --world-name handler -d http -d fetch-event \
//     -o echo-js.wasm handlers/js/echo/echo.js

import { serve } from "../../../guest-sdk/js/wasmserve.js";

export const handle = serve((request) => {
  for (let data; (data = request.recv()).length > 0; ) {
    request.sendall(data);
  }
});
