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
import time

from wit_world.imports import atomics, channels, keyspace, store

from wasmserve_loop import wait_for_pollable

__all__ = [
    "Bucket",
    "ChannelError",
    "KeyValueError",
    "Message",
    "Subscription",
    "now_millis",
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

    # Contract 0.2.3's keyspace: deadlines (Unix milliseconds), conditional
    # writes, count, clear, scan and steps over several keys.

    def _call(self, function, *args):
        try:
            return function(self._inner, *args)
        except Err as err:
            raise _kv_error(err) from None

    def set_expiring(self, key: str, value: bytes, ttl: float) -> None:
        """Sets ``key`` to ``value``, to expire after ``ttl`` seconds.

        Example: ``bucket.set_expiring("otp", b"123456", 60)``
        """
        deadline = now_millis() + int(ttl * 1000)
        self.write(key, value, deadline=deadline)

    def deadline(self, key: str) -> int | None:
        """When ``key`` expires (Unix milliseconds); ``None`` if it never
        does or does not exist (``exists`` tells which).

        Example: ``left_ms = bucket.deadline("otp") - now_millis()``
        """
        expiry = self._call(keyspace.get_expiry, key)
        return expiry.value if isinstance(expiry, keyspace.Expiry_At) else None

    def set_deadline(self, key: str, deadline: int | None, *, only_if_none=False,
                     only_if_some=False, only_if_later=False, only_if_earlier=False) -> bool:
        """Sets (an int) or removes (``None``) the deadline of an existing
        ``key`` if the conditions hold (Redis's ``EXPIRE`` NX, XX, GT, LT);
        true if it changed. A deadline already past deletes the key.

        Example: ``bucket.set_deadline("otp", None, only_if_some=True)`` (``PERSIST``)
        """
        condition = keyspace.ExpiryCondition(0)
        for wanted, flag in [(only_if_none, keyspace.ExpiryCondition.IF_NONE),
                             (only_if_some, keyspace.ExpiryCondition.IF_SOME),
                             (only_if_later, keyspace.ExpiryCondition.IF_LATER),
                             (only_if_earlier, keyspace.ExpiryCondition.IF_EARLIER)]:
            if wanted:
                condition |= flag
        return self._call(keyspace.set_expiry, key, deadline, condition)

    def write(self, key: str, value: bytes, *, only_if: str | None = None,
              if_equal: bytes | None = None, deadline: int | None = None,
              keep_deadline=False, previous=False) -> tuple[bool, bytes | None]:
        """Writes ``value`` at ``key`` in one step if the condition holds
        (``only_if="absent"`` or ``"present"``, or ``if_equal=`` the bytes it
        must hold), with ``deadline`` (Unix ms), the one it had
        (``keep_deadline``) or none; returns whether it wrote and, with
        ``previous=True``, the value before (Redis's ``SET`` options).

        Example: ``won, _ = bucket.write("lock", b"me", only_if="absent", deadline=now_millis() + 5000)``
        """
        if if_equal is not None:
            condition = keyspace.WriteCondition_IfEqual(if_equal)
        elif only_if == "absent":
            condition = keyspace.WriteCondition_IfAbsent()
        elif only_if == "present":
            condition = keyspace.WriteCondition_IfPresent()
        elif only_if is None:
            condition = keyspace.WriteCondition_Always()
        else:
            raise ValueError(f"only_if must be 'absent' or 'present', not {only_if!r}")
        if deadline is not None:
            expiry = keyspace.WriteExpiry_At(deadline)
        elif keep_deadline:
            expiry = keyspace.WriteExpiry_Keep()
        else:
            expiry = keyspace.WriteExpiry_Clear()
        outcome = self._call(keyspace.write, key, value, condition, expiry, previous)
        return outcome.written, outcome.previous

    def get_and_expire(self, key: str, deadline: int | None) -> bytes | None:
        """Reads ``key`` and sets (an int) or removes (``None``) its deadline
        in one step (Redis's ``GETEX``).

        Example: ``value = bucket.get_and_expire("session", now_millis() + 60_000)``
        """
        return self._call(keyspace.get_and_expire, key, deadline)

    def take(self, key: str) -> bytes | None:
        """Reads and deletes ``key`` in one step (Redis's ``GETDEL``).

        Example: ``token = bucket.take("one-time-token")``
        """
        return self._call(keyspace.take, key)

    def count(self) -> int:
        """How many keys the bucket holds.

        Example: ``size = bucket.count()``
        """
        return self._call(keyspace.count)

    def clear(self) -> None:
        """Deletes every key of the bucket.

        Example: ``bucket.clear()``
        """
        self._call(keyspace.clear)

    def scan(self, cursor: int = 0, pattern: str | None = None,
             count: int = 100) -> tuple[list[str], int]:
        """One page of keys from ``cursor`` (0 to begin) matching the glob
        ``pattern``; returns the keys and the next cursor (0 at the end).
        Every key present for the whole scan comes back at least once.

        Example: ``keys, cursor = bucket.scan(cursor, "user:*")``
        """
        page = self._call(keyspace.scan, cursor, pattern, count)
        return page.keys, page.cursor

    def random_key(self) -> str | None:
        """A key picked at random, ``None`` if the bucket is empty.

        Example: ``any_key = bucket.random_key()``
        """
        return self._call(keyspace.random_key)

    def rename(self, source: str, target: str, replace=True) -> bool:
        """Moves ``source``'s value and deadline to ``target`` (replacing it
        unless ``replace`` is false); false if ``target`` existed and was
        kept. Raises ``KeyError`` if there is no ``source``.

        Example: ``bucket.rename("draft", "final")``
        """
        outcome = self._call(keyspace.rename, source, target, replace)
        if outcome == keyspace.RenameOutcome.NO_SUCH_KEY:
            raise KeyError(source)
        return outcome == keyspace.RenameOutcome.RENAMED

    def copy(self, source: str, target: str, replace=False) -> bool:
        """Copies ``source``'s value and deadline to ``target`` (replacing
        it only if ``replace``); true if it copied.

        Example: ``bucket.copy("template", "page-1")``
        """
        return self._call(keyspace.copy, source, target, replace)

    def set_many_if_none_exist(self, pairs: dict[str, bytes]) -> bool:
        """Sets every pair, only if none of the keys exists; true if it did.

        Example: ``bucket.set_many_if_none_exist({"a": b"1", "b": b"2"})``
        """
        return self._call(keyspace.set_many_if_none_exist, list(pairs.items()))


def now_millis() -> int:
    """The wall clock in Unix milliseconds: what deadlines count from.

    Example: ``in_a_minute = now_millis() + 60_000``
    """
    return time.time_ns() // 1_000_000


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
