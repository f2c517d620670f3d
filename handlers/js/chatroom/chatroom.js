// chatroom in JavaScript: the same room and protocol as the Rust and Python
// `chatroom` (`NAME: line` to every other member; `/nick NAME`, `/who`,
// `/quit`; `* ...` notices), with members in the `members` bucket and lines
// on the `room` channel. One `waitAny` waits for the client and the room at
// once. With `--state redis://HOST:PORT` several processes share the room.
//
// Build (see docs/javascript.md):
//   componentize-js --wit wit --world-name handler -d http -d fetch-event \
//     -o chatroom-js.wasm handlers/js/chatroom/chatroom.js

import { openBucket, publish, serve, subscribe, text, waitAny } from "../../../guest-sdk/js/wasmserve.js";

const ROOM = "room";
const NAME = /^[A-Za-z0-9._-]{1,32}$/;

export const handle = serve((request) => {
  const room = subscribe(ROOM);
  const members = openBucket("members");
  const id = String(openBucket("default").increment("guests"));
  let name = `guest-${id}`;
  const announce = (line) => publish(ROOM, `${id} ${line}`);
  members.set(name, id);
  announce(`* ${name} joined\n`);
  request.sendall(`* welcome, you are ${name}; /nick NAME, /who, /quit\n`);

  // What one line from the client does; false ends the connection.
  const said = (line) => {
    const [command, ...rest] = line.split(" ");
    const arg = rest.join(" ").trim();
    if (command === "/quit") {
      request.sendall("* bye\n");
      return false;
    }
    if (command === "/who") {
      request.sendall(`* members: ${members.keys().sort().join(", ")}\n`);
    } else if (command === "/nick") {
      if (!NAME.test(arg)) {
        request.sendall("* names are 1 to 32 letters, digits, '-', '_' or '.'\n");
      } else if (!members.claim(arg, id)) {
        request.sendall(`* ${arg} is taken\n`);
      } else {
        members.delete(name);
        announce(`* ${name} is now known as ${arg}\n`);
        name = arg;
      }
    } else if (line !== "") {
      announce(`${name}: ${line}\n`);
    }
    return true;
  };

  try {
    for (;;) {
      // Everyone else's lines first, then the client's, then wait for either.
      for (let message; (message = room.tryReceive()) !== undefined; ) {
        if (message.lost > 0) request.sendall(`* (you missed ${message.lost} lines)\n`);
        const payload = text(message.payload);
        const space = payload.indexOf(" ");
        if (space >= 0 && payload.slice(0, space) !== id) request.sendall(payload.slice(space + 1));
      }
      const line = request.readline(0);
      if (line === "") return;
      if (line !== null) {
        if (!said(line.replace(/\r?\n$/, ""))) return;
        continue;
      }
      waitAny([request.readable(), room.pollable()]);
    }
  } finally {
    members.delete(name);
    announce(`* ${name} left\n`);
  }
});
