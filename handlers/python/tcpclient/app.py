"""tcpclient in Python: each line a client sends is relayed to the
``upstream`` line server (a setting, ``IP:PORT``, which the operator allows
with ``--allow-connect``) and the upstream's answer line is sent back.

Python's ``socket`` module works over ``wasi:sockets`` in componentize-py;
give ``connect`` the host as bytes (``b"127.0.0.1"``): a str host is encoded
with the ``idna`` codec, which componentize-py's standard library lacks.

Build (see docs/python.md):
    componentize-py -d wit -w handler componentize app -p handlers/python/tcpclient -p guest-sdk/python -o tcpclient-py.wasm
"""

import socket

from wasmserve_sdk import BaseRequestHandler, serve, setting


class TcpClientHandler(BaseRequestHandler):
    def handle(self):
        host, _, port = (setting("upstream") or "").rpartition(":")
        try:
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.connect((host.encode(), int(port)))
        except PermissionError:
            # WASI numbers errno differently from Linux ("[Errno 2]" is
            # access denied there, "no such file" here): say it in words.
            raise PermissionError(
                f"cannot connect to {host}:{port}: access denied "
                "(the host's --allow-connect does not list it)"
            ) from None
        answers = upstream.makefile("rb")
        pending = b""
        while data := self.request.recv(4096):
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                upstream.sendall(line + b"\n")
                answer = answers.readline()
                if not answer:
                    self.request.sendall(b"upstream closed\n")
                    return
                self.request.sendall(answer)


WitWorld = serve(TcpClientHandler)
