"""timeout-greet in Python: asks for a name and waits up to ``timeout``
seconds (setting, default 10) for it, answering ``hello NAME`` or, when the
timer wins the race, ``too slow, bye``.

Build (see docs/python.md):
    componentize-py -d wit -w handler componentize app -p handlers/python/timeout-greet -p guest-sdk/python -o timeout-greet-py.wasm
"""

import asyncio

from wasmserve_sdk import BaseRequestHandler, serve, setting


class TimeoutGreetHandler(BaseRequestHandler):
    async def handle(self):
        timeout = float(setting("timeout") or 10)
        await self.request.sendall(b"what is your name?\n")
        try:
            name = await asyncio.wait_for(self.request.readline(), timeout)
        except TimeoutError:
            await self.request.sendall(b"too slow, bye\n")
            return
        await self.request.sendall(b"hello " + name.strip() + b"\n")


WitWorld = serve(TimeoutGreetHandler)
