"""proxy in Python: each connection goes to one of the ``upstreams`` (a
setting, ``IP:PORT,IP:PORT,...``, each allowed with ``--allow-connect``),
round-robin across connections through a counter in the service's bucket,
skipping upstreams that refuse. The handler only chooses: ``hand_off``
(contract 0.2.2) gives the connection to the host, which relays it both ways
in native code once ``handle`` returns, with no interpreter left running.

Build (see docs/python.md):
    componentize-py -d wit -w handler componentize app -p handlers/python/proxy -p guest-sdk/python -o proxy-py.wasm
"""

from wasmserve_sdk import BaseRequestHandler, serve, setting
from wasmserve_state import open_bucket


class ProxyHandler(BaseRequestHandler):
    def handle(self):
        upstreams = [u.strip() for u in (setting("upstreams") or "").split(",") if u.strip()]
        if not upstreams:
            raise ValueError("no upstreams: --set upstreams=IP:PORT,...")
        turn = open_bucket("proxy").increment("turn", 1)
        refused = []
        for offset in range(len(upstreams)):
            upstream = upstreams[(turn + offset) % len(upstreams)]
            try:
                self.request.hand_off(upstream)
            except OSError as err:
                refused.append(str(err))
                continue
            if refused:
                print("skipped", "; ".join(refused))
            return
        raise ConnectionError("no upstream took the connection: " + "; ".join(refused))


WitWorld = serve(ProxyHandler)
