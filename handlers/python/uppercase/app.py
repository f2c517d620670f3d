"""uppercase in Python, as socketserver's StreamRequestHandler example: reads
lines from ``self.rfile`` and writes them back upper-cased to ``self.wfile``.

With ``--set hello=1`` it first says whom it serves, from
``self.client_address`` (``(host, port)``, as socketserver gives it).
"""

from wasmserve_sdk import StreamRequestHandler, serve, setting


class UppercaseHandler(StreamRequestHandler):
    def handle(self):
        if setting("hello"):
            host, port = self.client_address[:2]
            self.wfile.write(f"hello {host} port {port}\n".encode())
        for line in self.rfile:
            self.wfile.write(line.upper())


WitWorld = serve(UppercaseHandler)
