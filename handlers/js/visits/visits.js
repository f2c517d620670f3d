// visits in JavaScript: greets each client with its visitor number, counted
// by an atomic increment in the service's key-value bucket, so concurrent
// connections (on one host or, with `--state redis://...`, many) never get
// the same number.
//
// Build (see docs/javascript.md):
//   componentize-js --wit wit --world-name handler -d http -d fetch-event \
//     -o visits-js.wasm handlers/js/visits/visits.js

import { openBucket, serve } from "../../../guest-sdk/js/wasmserve.js";

export const handle = serve((request) => {
  const visitor = openBucket("default").increment("visits");
  request.sendall(`you are visitor #${visitor}\n`);
});
