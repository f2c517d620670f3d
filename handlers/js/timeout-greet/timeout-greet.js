// timeout-greet in JavaScript: asks for a name and waits up to `timeout`
// seconds (setting, default 10) for it, answering `hello NAME` or, when
// the timer wins the race, `too slow, bye`. The wait is one `wasi:io/poll`
// over the client's readiness and a timer: no CPU time.
//
// Build (see docs/javascript.md):
//   componentize-js --wit wit --world-name handler -d http -d fetch-event \
//     -o timeout-greet-js.wasm handlers/js/timeout-greet/timeout-greet.js

import { serve, setting } from "../../../guest-sdk/js/wasmserve.js";

export const handle = serve((request) => {
  const timeout = Number(setting("timeout") ?? 10);
  request.sendall("what is your name?\n");
  const name = request.readline(timeout * 1000);
  if (name === null) {
    request.sendall("too slow, bye\n");
    return;
  }
  request.sendall(`hello ${name.trim()}\n`);
});
