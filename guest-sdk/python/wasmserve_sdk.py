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

Async handlers (``async def handle``) wait on several things at once: the
client, ``asyncio.sleep``, ``asyncio.wait_for`` timeouts, other tasks. Their
``self.request`` is an :class:`AsyncRequest` (``await self.request.recv(n)``),
run on an asyncio loop over ``wasi:io/poll`` (``wasmserve_loop``)::

    class TimeoutGreet(BaseRequestHandler):
        async def handle(self):
            await self.request.sendall(b"name? ")
            try:
                name = await asyncio.wait_for(self.request.readline(), 5)
                await self.request.sendall(b"hello " + name)
            except TimeoutError:
                await self.request.sendall(b"too slow, bye\n")

Build it with componentize-py (the WIT is wasmserve's ``wit/`` folder)::

    componentize-py -d wit -w handler componentize app -p . -p path/to/guest-sdk/python -o echo.wasm

What the handler prints goes to the host's log, tagged with the connection.
"""

import inspect
import weakref

import wit_world
from componentize_py_types import Err
from wit_world.imports import config, streams, types

from wasmserve_loop import PollLoop, wait_for_pollable

__all__ = [
    "AsyncRequest",
    "BaseRequestHandler",
    "Request",
    "StreamRequestHandler",
    "setting",
    "serve",
]

# What ``readline`` asks the host for at a time.
_READ_CHUNK = 65536


class _Connection:
    """What both request kinds say about their connection."""

    def __init__(self, inner: types.Request):
        self._inner = inner
        # What ``readline`` read past the line it returned.
        self._buffered = b""

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

    def tls(self):
        """What TLS negotiated when the host terminated TLS for this
        connection (``--tls-cert``), else ``None``: an object with
        ``version``, ``cipher``, ``alpn``, ``server_name`` and
        ``client_subject`` (the verified client certificate's subject
        under ``--tls-client-ca``; ``None`` when absent).

        Example: ``who = tls.client_subject if (tls := self.request.tls()) else None``
        """
        return self._inner.tls()

    def hand_off(self, upstream: str, first: bytes = b"") -> None:
        """Hands the connection to ``upstream``, an ``"IP:PORT"`` the
        service's ``--allow-connect`` lists (contract 0.2.2): the host
        connects now and, once ``handle`` returns without raising, relays
        the bytes both ways in native code, with no interpreter running.
        ``first`` (what the handler read to choose) and whatever
        ``readline`` read past its line go to the upstream ahead of the
        client's next bytes. On failure it raises ``ValueError`` (not an
        ``IP:PORT``), ``PermissionError`` (not allowed, or over
        ``--max-outbound``), ``ConnectionRefusedError``, ``TimeoutError``
        or ``OSError`` (a datagram, or handed off already), and the request
        stays the handler's.

        Example: ``line = self.request.readline(); self.request.hand_off("127.0.0.1:6379", line)``
        """
        try:
            self._inner.hand_off(upstream, bytes(first) + self._buffered)
        except Err as err:
            raise _hand_off_error(err.value, upstream) from None
        self._buffered = b""


class Request(_Connection):
    """One connection, or one datagram, as a socket-like object.

    ``recv(n)`` returns up to ``n`` bytes and ``b""`` at end of stream (for a
    datagram: its payload, then ``b""``); ``sendall(data)`` sends every byte
    (on a datagram transport: one datagram back to the sender).

    Example: ``data = self.request.recv(1024)``
    """

    def __init__(self, inner: types.Request):
        super().__init__(inner)

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes; ``b""`` once the client is done.

        Example: ``while data := self.request.recv(4096): ...``
        """
        if self._buffered:
            data, self._buffered = self._buffered[:bufsize], self._buffered[bufsize:]
            return data
        try:
            return self._inner.read(bufsize)
        except Err as err:
            raise _connection_error(err.value) from None

    def readline(self, limit: int = -1) -> bytes:
        """The next line, ``b"\\n"`` included, like a binary file's
        ``readline``: at most ``limit`` bytes when ``limit`` is not negative,
        what is left without a newline at end of stream, then ``b""``. Bytes
        read past the line are kept for the next ``readline`` or ``recv``.

        Example: ``while line := self.request.readline(): ...``
        """
        while True:
            end = self._buffered.find(b"\n") + 1
            if end and (limit < 0 or end <= limit):
                line, self._buffered = self._buffered[:end], self._buffered[end:]
                return line
            if 0 <= limit <= len(self._buffered):
                line, self._buffered = self._buffered[:limit], self._buffered[limit:]
                return line
            try:
                chunk = self._inner.read(_READ_CHUNK)
            except Err as err:
                raise _connection_error(err.value) from None
            if not chunk:
                line, self._buffered = self._buffered, b""
                return line
            self._buffered += chunk

    def sendall(self, data: bytes) -> None:
        """Sends every byte of ``data``, like ``socket.sendall``.

        Example: ``self.request.sendall(b"hello\\n")``
        """
        try:
            self._inner.write(bytes(data))
        except Err as err:
            raise _connection_error(err.value) from None


class AsyncRequest(_Connection):
    """The request of an ``async def handle``: ``recv``, ``readline`` and
    ``sendall`` are coroutines, so they can be raced with timers and other
    work (``asyncio.wait_for(self.request.recv(1024), 5)``). Underneath are
    the connection's WASI streams; waiting for them is not CPU time.

    Example: ``data = await self.request.recv(1024)``
    """

    MAX_RECV = 64 * 1024

    def __init__(self, inner: types.Request):
        super().__init__(inner)
        try:
            self._input, self._output = inner.streams()
        except Err as err:
            raise _connection_error(err.value) from None

    async def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes once some arrive; ``b""`` once the client
        is done (for a datagram: its payload, then ``b""``).

        Example: ``while data := await self.request.recv(4096): ...``
        """
        if self._buffered:
            data, self._buffered = self._buffered[:bufsize], self._buffered[bufsize:]
            return data
        return await self._read_stream(bufsize)

    async def _read_stream(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes from the stream itself, once some arrive."""
        while True:
            try:
                data = self._input.read(max(1, min(bufsize, self.MAX_RECV)))
            except Err as err:
                if isinstance(err.value, streams.StreamError_Closed):
                    return b""
                raise _stream_error(err.value) from None
            if data:
                return data
            await wait_for_pollable(self._input.subscribe())

    async def readline(self) -> bytes:
        """One line including its ``b"\n"``; at end of stream what is left,
        then ``b""``. A line half received when a timeout cancels this is
        kept for the next call.

        Example: ``line = await asyncio.wait_for(self.request.readline(), 5)``
        """
        while b"\n" not in self._buffered:
            data = await self._read_stream(self.MAX_RECV)
            if not data:
                break
            self._buffered += data
        end = self._buffered.find(b"\n") + 1 or len(self._buffered)
        line, self._buffered = self._buffered[:end], self._buffered[end:]
        return line

    async def sendall(self, data: bytes) -> None:
        """Sends every byte of ``data`` and waits until the host sent them
        (on a datagram transport: one datagram back per call).

        Example: ``await self.request.sendall(b"hello\n")``
        """
        data = bytes(data)
        try:
            offset = 0
            while True:
                permitted = self._output.check_write()
                if permitted == 0:
                    await wait_for_pollable(self._output.subscribe())
                    continue
                chunk = data[offset : offset + permitted]
                self._output.write(chunk)
                offset += len(chunk)
                if offset >= len(data):
                    break
            self._output.flush()
            while self._output.check_write() == 0:
                await wait_for_pollable(self._output.subscribe())
        except Err as err:
            raise _stream_error(err.value) from None

    def close(self) -> None:
        """Drops the streams (``serve`` calls it when ``handle`` returns)."""
        self._input.__exit__(None, None, None)
        self._output.__exit__(None, None, None)


class BaseRequestHandler:
    """socketserver's ``BaseRequestHandler``: override ``handle()``.

    ``self.request`` is a :class:`Request` (an :class:`AsyncRequest` when
    ``handle`` is ``async def``); ``self.client_address`` is the peer's
    address as socketserver gives it: ``(host, port)`` over IPv4,
    ``(host, port, 0, 0)`` over IPv6, the client's socket path (usually
    ``""``) over Unix sockets. ``setup()`` runs before ``handle()`` and
    ``finish()`` after it.

    Example::

        class Greet(BaseRequestHandler):
            def handle(self):
                self.request.sendall(b"Thank you for connecting")
    """

    def __init__(self, request: Request, client_address):
        self.request = request
        self.client_address = client_address

    def setup(self) -> None:
        """Called before ``handle()``; does nothing by default."""

    def handle(self) -> None:
        """Serves the request; override it."""

    def finish(self) -> None:
        """Called after ``handle()``, even if it raised; does nothing by default."""


class _ReadFile:
    """``rfile``: the request's input as a binary file (``readline``,
    ``read``, iteration line by line)."""

    def __init__(self, request: Request):
        self._request = request

    def readline(self, limit: int = -1) -> bytes:
        """The next line (see :meth:`Request.readline`).

        Example: ``name = self.rfile.readline().strip()``
        """
        return self._request.readline(limit)

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes, fewer only at end of stream; with a negative
        ``size``, everything until the client is done.

        Example: ``body = self.rfile.read(length)``
        """
        parts = []
        wanted = size
        while wanted != 0:
            data = self._request.recv(_READ_CHUNK if wanted < 0 else wanted)
            if not data:
                break
            parts.append(data)
            if wanted > 0:
                wanted -= len(data)
        return b"".join(parts)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _WriteFile:
    """``wfile``: the request's output as a binary file; every ``write``
    is sent at once (socketserver's ``wbufsize = 0``)."""

    def __init__(self, request: Request):
        self._request = request

    def write(self, data: bytes) -> int:
        """Sends every byte of ``data``; returns how many.

        Example: ``self.wfile.write(b"hello\\n")``
        """
        self._request.sendall(data)
        return len(data)

    def writelines(self, lines) -> None:
        """Writes each of ``lines``.

        Example: ``self.wfile.writelines([b"a\\n", b"b\\n"])``
        """
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing is held back: does nothing."""


class StreamRequestHandler(BaseRequestHandler):
    """socketserver's ``StreamRequestHandler``: ``self.rfile`` reads the
    request like a binary file (``readline``, ``read``, ``for line in
    self.rfile``) and ``self.wfile`` writes to it; both are set up by
    ``setup()``, so a subclass that overrides it calls ``super().setup()``.
    For blocking handlers (``def handle``).

    Example::

        class Upper(StreamRequestHandler):
            def handle(self):
                for line in self.rfile:
                    self.wfile.write(line.upper())
    """

    def setup(self) -> None:
        """Makes ``rfile`` and ``wfile``."""
        self.rfile = _ReadFile(self.request)
        self.wfile = _WriteFile(self.request)

    def finish(self) -> None:
        """Flushes ``wfile``."""
        self.wfile.flush()


def setting(name: str) -> str | None:
    """The operator's setting ``name`` (``wasmserve --set name=value``), or None.

    Example: ``greeting = setting("greeting") or "Thank you for connecting"``
    """
    return config.get(name)


def serve(handler_class: type[BaseRequestHandler]) -> type:
    """The ``WitWorld`` class componentize-py exports, serving ``handler_class``.

    Example: ``WitWorld = serve(EchoHandler)``
    """

    is_async = inspect.iscoroutinefunction(handler_class.handle)

    class WitWorld(wit_world.WitWorld):
        def handle(self, request: types.Request) -> None:
            with request:
                if is_async:
                    _serve_async(handler_class, request)
                else:
                    handler = handler_class(Request(request), _client_address(request.peer_addr()))
                    _serve(handler, handler_class.handle)

    return WitWorld


def _serve(handler: BaseRequestHandler, handle) -> None:
    """Runs ``setup``, ``handle`` (a function), ``finish``; errors go to the host."""
    try:
        handler.setup()
        handle(handler)
    except ConnectionError:
        pass  # the client went away: not the handler's failure
    except Exception as err:  # reported to the host, which logs it
        raise Err(f"{type(err).__name__}: {err}") from None
    finally:
        handler.finish()


def _serve_async(handler_class, request: types.Request) -> None:
    """Runs an ``async def handle`` to completion on a fresh ``PollLoop``."""
    try:
        async_request = AsyncRequest(request)
    except ConnectionError:
        return
    loop = PollLoop()
    handler = handler_class(async_request, _client_address(request.peer_addr()))
    try:
        _serve(handler, lambda handler: loop.run_until_complete(handler.handle()))
    finally:
        loop.close()
        async_request.close()


def _client_address(peer: str):
    """``peer-addr`` in socketserver's form: ``(host, port)`` for IPv4,
    ``(host, port, 0, 0)`` for IPv6, else the text itself (a Unix path)."""
    if peer.startswith("["):
        host, _, port = peer[1:].rpartition("]:")
        if port.isdigit():
            return (host, int(port), 0, 0)
    host, colon, port = peer.rpartition(":")
    if colon and host and port.isdigit() and "/" not in host:
        return (host, int(port))
    return peer


def _stream_error(error) -> ConnectionError:
    """What a WASI stream error means to a handler."""
    if isinstance(error, streams.StreamError_Closed):
        return ConnectionResetError("connection closed")
    message = error.value.to_debug_string()
    if "--idle-timeout" in message:
        return TimeoutError(message)
    return ConnectionError(message)


def _hand_off_error(error, upstream: str) -> OSError:
    if isinstance(error, types.HandOffError_InvalidAddress):
        return ValueError(error.value)
    if isinstance(error, types.HandOffError_Denied):
        return PermissionError(error.value)
    if isinstance(error, types.HandOffError_Refused):
        return ConnectionRefusedError(error.value)
    if isinstance(error, types.HandOffError_TimedOut):
        return TimeoutError(f"{upstream}: no answer within --connect-timeout")
    return OSError(getattr(error, "value", str(error)))


def _connection_error(error) -> ConnectionError:
    if isinstance(error, types.Error_Closed):
        return ConnectionResetError("connection closed")
    if isinstance(error, types.Error_TimedOut):
        return TimeoutError("timed out")
    return ConnectionError(getattr(error, "value", str(error)))


# componentize-py wraps each resource the host hands over (every request
# first) with ``weakref.finalize``, whose first call in a process imports
# ``atexit`` and registers finalize's exit hook. Calling it once here, while
# the handler is built, puts both in the snapshot every connection starts
# from, instead of doing them again in each (about 1 % of a connection).
weakref.finalize(_Connection, int).detach()
