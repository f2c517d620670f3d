"""ticker in Python: full duplex with asyncio. It sends a numbered line
(``tick 1``, ``tick 2``, ...) every ``interval`` seconds (setting, default 1)
while echoing whatever the client sends, interleaved, until the client closes.

Build (see docs/python.md):
    componentize-py -d wit -w handler componentize app -p handlers/python/ticker -p guest-sdk/python -o ticker-py.wasm
"""

import asyncio

from wasmserve_sdk import BaseRequestHandler, serve, setting


class TickerHandler(BaseRequestHandler):
    async def handle(self):
        interval = max(float(setting("interval") or 1), 0.01)
        ticks = asyncio.create_task(self.tick(interval))
        try:
            while data := await self.request.recv(4096):
                await self.request.sendall(data)
        finally:
            ticks.cancel()

    async def tick(self, interval):
        count = 0
        while True:
            await asyncio.sleep(interval)
            count += 1
            await self.request.sendall(f"tick {count}\n".encode())


WitWorld = serve(TickerHandler)
