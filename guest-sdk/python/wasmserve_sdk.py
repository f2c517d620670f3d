"""Write wasmserve handlers in Python the way socketserver handlers are written.

A handler is a ``BaseRequestHandler`` subclass whose ``handle()`` uses
``self.request`` (``recv``/``sendall`` like a socket) and
``self.client_address``; ``serve(YourHandler)`` turns it into the component's
``handle`` export::

    from wasmserve_sdk import BaseRequestHandler, serve

    class EchoHandler(BaseRequestHandler):
        def handle(self):
            while data := self.request.recv(1024):
                self.request.sendall(data)

    WitWorld = serve(EchoHandler)

Build it with componentize-py (the WIT is wasmserve's ``wit/`` folder)::

    componentize-py -d wit -w handler componentize app -p . -p path/to/guest-sdk/python -o echo.wasm

What the handler prints goes to the host's log, tagged with the connection.
"""

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, types

__all__ = ["BaseRequestHandler", "Request", "setting", "serve"]


class Request:
    """One connection, or one datagram, as a socket-like object.

    ``recv(n)`` returns up to ``n`` bytes and ``b""`` at end of stream (for a
    datagram: its payload, then ``b""``); ``sendall(data)`` sends every byte
    (on a datagram transport: one datagram back to the sender).

    Example: ``data = self.request.recv(1024)``
    """

    def __init__(self, inner: types.Request):
        self._inner = inner

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes; ``b""`` once the client is done.

        Example: ``while data := self.request.recv(4096): ...``
        """
        try:
            return self._inner.read(bufsize)
        except Err as err:
            raise _connection_error(err.value) from None

    def sendall(self, data: bytes) -> None:
        """Sends every byte of ``data``, like ``socket.sendall``.

        Example: ``self.request.sendall(b"hello\\n")``
        """
        try:
            self._inner.write(bytes(data))
        except Err as err:
            raise _connection_error(err.value) from None

    def shutdown_write(self) -> None:
        """Half-closes the connection: the client reads end of stream.

        Example: ``self.request.shutdown_write()``
        """
        try:
            self._inner.shutdown_write()
        except Err as err:
            raise _connection_error(err.value) from None

    def transport(self) -> str:
        """``"tcp"``, ``"udp"``, ``"unix-stream"`` or ``"unix-datagram"``.

        Example: ``if self.request.transport() == "udp": ...``
        """
        return self._inner.transport().name.lower().replace("_", "-")

    def local_addr(self) -> str:
        """The address the request arrived on, e.g. ``"127.0.0.1:8100"``.

        Example: ``print("served on", self.request.local_addr())``
        """
        return self._inner.local_addr()


class BaseRequestHandler:
    """socketserver's ``BaseRequestHandler``: override ``handle()``.

    ``self.request`` is a :class:`Request`; ``self.client_address`` is the
    peer's address as a string (``"127.0.0.1:50000"``, a Unix socket path, or
    ``""``). ``setup()`` runs before ``handle()`` and ``finish()`` after it.

    Example::

        class Greet(BaseRequestHandler):
            def handle(self):
                self.request.sendall(b"Thank you for connecting")
    """

    def __init__(self, request: Request, client_address: str):
        self.request = request
        self.client_address = client_address

    def setup(self) -> None:
        """Called before ``handle()``; does nothing by default."""

    def handle(self) -> None:
        """Serves the request; override it."""

    def finish(self) -> None:
        """Called after ``handle()``, even if it raised; does nothing by default."""


def setting(name: str) -> str | None:
    """The operator's setting ``name`` (``wasmserve --set name=value``), or None.

    Example: ``greeting = setting("greeting") or "Thank you for connecting"``
    """
    return config.get(name)


def serve(handler_class: type[BaseRequestHandler]) -> type:
    """The ``WitWorld`` class componentize-py exports, serving ``handler_class``.

    Example: ``WitWorld = serve(EchoHandler)``
    """

    class WitWorld(wit_world.WitWorld):
        def handle(self, request: types.Request) -> None:
            with request:
                handler = handler_class(Request(request), request.peer_addr())
                try:
                    handler.setup()
                    handler.handle()
                except ConnectionError:
                    pass  # the client went away: not the handler's failure
                except Exception as err:  # reported to the host, which logs it
                    raise Err(f"{type(err).__name__}: {err}") from None
                finally:
                    handler.finish()

    return WitWorld


def _connection_error(error) -> ConnectionError:
    if isinstance(error, types.Error_Closed):
        return ConnectionResetError("connection closed")
    if isinstance(error, types.Error_TimedOut):
        return TimeoutError("timed out")
    return ConnectionError(getattr(error, "value", str(error)))
