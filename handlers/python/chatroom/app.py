"""chatroom in Python: the same room and protocol as the Rust ``chatroom``
(``NAME: line`` to every other member; ``/nick NAME``, ``/who``, ``/quit``;
``* …`` notices), with members in the ``members`` bucket and lines on the
``room`` channel. With ``--state redis://HOST:PORT`` several processes
share the room.

Build (see docs/python.md):
    componentize-py -d wit -w handler componentize app -p handlers/python/chatroom -p guest-sdk/python -o chatroom-py.wasm
"""

import asyncio

from wasmserve_sdk import BaseRequestHandler, serve
from wasmserve_state import now_millis, open_bucket, publish, subscribe

ROOM = "room"
# A member's entry expires a day after it was written, so the names of
# members whose host stopped without saying goodbye come free again.
MEMBER_TTL = 24 * 3600


class ChatHandler(BaseRequestHandler):
    async def handle(self):
        room = subscribe(ROOM)
        self.members = open_bucket("members")
        self.id = open_bucket("default").increment("guests", 1)
        self.name = f"guest-{self.id}"
        self.members.set_expiring(self.name, str(self.id).encode(), MEMBER_TTL)
        self.announce(f"* {self.name} joined\n")
        await self.request.sendall(
            f"* welcome, you are {self.name}; /nick NAME, /who, /quit\n".encode()
        )
        relay = asyncio.ensure_future(self.relay(room))
        try:
            while line := await self.request.readline():
                if not await self.said(line.decode(errors="replace").rstrip("\r\n")):
                    break
        finally:
            relay.cancel()
            self.members.delete(self.name)
            self.announce(f"* {self.name} left\n")

    def announce(self, text: str) -> None:
        publish(ROOM, f"{self.id} {text}".encode())

    async def relay(self, room):
        while True:
            message = await room.receive()
            if message.lost:
                await self.request.sendall(f"* (you missed {message.lost} lines)\n".encode())
            sender, _, text = message.payload.partition(b" ")
            if sender != str(self.id).encode():
                await self.request.sendall(text)

    async def said(self, line: str) -> bool:
        command, _, rest = line.partition(" ")
        if command == "/quit":
            await self.request.sendall(b"* bye\n")
            return False
        if command == "/who":
            who = ", ".join(sorted(self.member_names()))
            await self.request.sendall(f"* members: {who}\n".encode())
        elif command == "/nick":
            await self.rename(rest.strip())
        elif line:
            self.announce(f"{self.name}: {line}\n")
        return True

    def member_names(self) -> list[str]:
        names, cursor = [], 0
        while True:
            page, cursor = self.members.scan(cursor, count=100)
            names.extend(page)
            if cursor == 0:
                return names

    async def rename(self, name: str) -> None:
        if not name or len(name) > 32 or not all(c.isalnum() or c in "-_." for c in name):
            await self.request.sendall(b"* names are 1 to 32 letters, digits, '-', '_' or '.'\n")
            return
        mine = str(self.id).encode()
        deadline = now_millis() + MEMBER_TTL * 1000
        claimed, _ = self.members.write(name, mine, only_if="absent", deadline=deadline)
        if not claimed and self.members.get(name) != mine:
            await self.request.sendall(f"* {name} is taken\n".encode())
            return
        self.members.delete(self.name)
        old, self.name = self.name, name
        self.announce(f"* {old} is now known as {name}\n")


WitWorld = serve(ChatHandler)
