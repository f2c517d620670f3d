"""greet in Python: writes its greeting and closes, as in socketserver's classic example.

The greeting is the `greeting` setting (`wasmserve --set greeting=...`),
by default `Thank you for connecting`.
"""

from wasmserve_sdk import BaseRequestHandler, serve, setting


class GreetHandler(BaseRequestHandler):
    def handle(self):
        greeting = setting("greeting") or "Thank you for connecting"
        self.request.sendall(greeting.encode())


WitWorld = serve(GreetHandler)
