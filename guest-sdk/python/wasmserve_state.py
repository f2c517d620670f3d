"""Shared state and messaging for Python handlers: key-value buckets
(``wasi:keyvalue``, kept by the host for every instance of the service) and
pub/sub channels.

A visitor counter::

    from wasmserve_state import open_bucket

    class Visits(BaseRequestHandler):
        def handle(self):
            n = open_bucket("default").increment("visits", 1)
            self.request.sendall(f"you are visitor #{n}\\n".encode())

A broadcast in an async handler::

    from wasmserve_state import publish, subscribe

    room = subscribe("room")
    publish("room", b"hello\\n")
    message = await room.receive()   # a Message: topic, payload, lost
"""

from dataclasses import dataclass

from componentize_py_types import Err
from wit_world.imports import atomics, channels, store

from wasmserve_loop import wait_for_pollable

__all__ = [
    "Bucket",
    "ChannelError",
    "KeyValueError",
    "Message",
    "Subscription",
    "open_bucket",
    "publish",
    "subscribe",
]


class KeyValueError(Exception):
    """A key-value call failed: a bad bucket name, a limit (the message
    names the host's flag), the backend unreachable.

    Example: ``except KeyValueError as err: print("store says", err)``
    """


class ChannelError(Exception):
    """A channel call failed: a bad topic, a message over the host's limit,
    the backend (Redis) unreachable.

    Example: ``except ChannelError as err: print("channels say", err)``
    """


def _kv_error(err: Err) -> KeyValueError:
    value = err.value
    if isinstance(value, store.Error_NoSuchStore):
        return KeyValueError("no such bucket")
    if isinstance(value, store.Error_AccessDenied):
        return KeyValueError("access denied")
    return KeyValueError(str(getattr(value, "value", value)))


def _channel_error(err: Err) -> ChannelError:
    value = err.value
    if isinstance(value, channels.Error_BadTopic):
        return ChannelError("bad topic name")
    if isinstance(value, channels.Error_TooLarge):
        return ChannelError(f"message over the host's limit of {value.value} bytes")
    return ChannelError(f"channels unavailable: {getattr(value, 'value', value)}")


class Bucket:
    """An open bucket: string keys, bytes values.

    Example: ``bucket = open_bucket("default"); bucket.set("k", b"v")``
    """

    def __init__(self, inner: store.Bucket):
        self._inner = inner

    def get(self, key: str) -> bytes | None:
        """The value at ``key``, or ``None``.

        Example: ``name = bucket.get("name") or b"stranger"``
        """
        try:
            return self._inner.get(key)
        except Err as err:
            raise _kv_error(err) from None

    def set(self, key: str, value: bytes) -> None:
        """Sets ``key`` to ``value``.

        Example: ``bucket.set("name", b"alice")``
        """
        try:
            self._inner.set(key, value)
        except Err as err:
            raise _kv_error(err) from None

    def delete(self, key: str) -> None:
        """Deletes ``key`` (absent is fine).

        Example: ``bucket.delete("name")``
        """
        try:
            self._inner.delete(key)
        except Err as err:
            raise _kv_error(err) from None

    def exists(self, key: str) -> bool:
        """Whether ``key`` is set.

        Example: ``if bucket.exists("banned"): return``
        """
        try:
            return self._inner.exists(key)
        except Err as err:
            raise _kv_error(err) from None

    def keys(self) -> list[str]:
        """Every key of the bucket.

        Example: ``print(", ".join(sorted(bucket.keys())))``
        """
        keys, cursor = [], None
        while True:
            try:
                page = self._inner.list_keys(cursor)
            except Err as err:
                raise _kv_error(err) from None
            keys.extend(page.keys)
            cursor = page.cursor
            if cursor is None:
                return keys

    def increment(self, key: str, delta: int) -> int:
        """Adds ``delta`` to the counter at ``key`` (absent is 0) atomically;
        returns the new value. Counters are stored as decimal text.

        Example: ``n = bucket.increment("visits", 1)``
        """
        try:
            return atomics.increment(self._inner, key, delta)
        except Err as err:
            raise _kv_error(err) from None

    def update(self, key: str, change) -> bytes:
        """Replaces the value at ``key`` with ``change(current)`` atomically
        (compare-and-swap, retried while another writer got in first);
        returns the value written.

        Example: ``bucket.update("owner", lambda old: old or b"me")``
        """
        try:
            ticket = atomics.Cas.new(self._inner, key)
            while True:
                value = change(ticket.current())
                try:
                    atomics.swap(ticket, value)
                    return value
                except Err as err:
                    if not isinstance(err.value, atomics.CasError_CasFailed):
                        raise _kv_error(Err(err.value.value)) from None
                    ticket = err.value.value
        except Err as err:
            raise _kv_error(err) from None


def open_bucket(name: str) -> Bucket:
    """Opens the bucket ``name`` (1 to 64 letters, digits, ``-_.``).

    Example: ``bucket = open_bucket("default")``
    """
    try:
        return Bucket(store.open(name))
    except Err as err:
        raise _kv_error(err) from None


@dataclass
class Message:
    """A message read from a subscription; ``lost`` counts older messages
    this subscriber lost just before it (its queue, or the service's queues
    together, were full). When nothing else was left to read, ``payload`` is
    empty and the message only tells of the loss.

    Example: ``print(message.topic, message.payload, message.lost)``
    """

    topic: str
    payload: bytes
    lost: int


class Subscription:
    """A subscription to one topic; messages queue until it is dropped.

    Example: ``room = subscribe("room"); message = await room.receive()``
    """

    def __init__(self, inner: channels.Subscription):
        self._inner = inner

    def try_receive(self) -> Message | None:
        """The next queued message, or ``None`` without waiting.

        Example: ``while (m := room.try_receive()) is not None: ...``
        """
        try:
            message = self._inner.try_receive()
        except Err as err:
            raise _channel_error(err) from None
        if message is None:
            return None
        return Message(message.topic, message.payload, message.lost)

    async def receive(self) -> Message:
        """Waits (without CPU) for the next message.

        Example: ``message = await room.receive()``
        """
        while True:
            message = self.try_receive()
            if message is not None:
                return message
            await wait_for_pollable(self._inner.subscribe())

    def topic(self) -> str:
        """The topic.

        Example: ``print("listening to", room.topic())``
        """
        return self._inner.topic()


def publish(topic: str, payload: bytes) -> None:
    """Sends ``payload`` to every subscriber of ``topic``.

    Example: ``publish("room", b"alice: hi\\n")``
    """
    try:
        channels.publish(topic, payload)
    except Err as err:
        raise _channel_error(err) from None


def subscribe(topic: str) -> Subscription:
    """Subscribes to ``topic``.

    Example: ``room = subscribe("room")``
    """
    try:
        return Subscription(channels.subscribe(topic))
    except Err as err:
        raise _channel_error(err) from None
