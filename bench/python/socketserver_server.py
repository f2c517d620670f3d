"""The seed's baseline: Python socketserver with ThreadingMixIn.

python3 socketserver_server.py echo|greet tcp|udp|unix ADDR
prints `listening <transport> <addr>` like wasmserve, then serves forever.
"""
import os
import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        if isinstance(self.request, tuple):  # a datagram
            data, sock = self.request
            sock.sendto(data, self.client_address)
            return
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class Greet(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"Thank you for connecting")


class TCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


class UDP(socketserver.ThreadingUDPServer):
    daemon_threads = True


class Unix(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    job, transport, addr = sys.argv[1:4]
    handler = Echo if job == "echo" else Greet
    if transport == "unix":
        if os.path.exists(addr):
            os.unlink(addr)
        server = Unix(addr, handler)
        shown = addr
    else:
        host, port = addr.rsplit(":", 1)
        server = (TCP if transport == "tcp" else UDP)((host, int(port)), handler)
        shown = "%s:%d" % server.server_address[:2]
    print("listening %s %s" % (transport, shown), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
