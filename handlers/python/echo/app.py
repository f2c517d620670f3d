"""echo in Python: sends back every byte until the client closes (or the datagram).

Build (see docs/python.md):
    componentize-py -d wit -w handler componentize app -p handlers/python/echo -p guest-sdk/python -o echo-py.wasm
"""

from wasmserve_sdk import BaseRequestHandler, serve


class EchoHandler(BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)


WitWorld = serve(EchoHandler)
