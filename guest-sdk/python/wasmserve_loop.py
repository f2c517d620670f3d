"""An ``asyncio`` event loop over WASI 0.2's ``wasi:io/poll``.

A wasmserve handler has no threads and no ``select``: it waits by handing
WASI pollables (its request's, its timers') to one ``poll`` call, which
suspends it in the host without using CPU time. This loop runs coroutines
that way: ready callbacks first, then one ``poll`` over every pollable a
coroutine awaits plus a ``monotonic-clock`` timer for the nearest
``call_later`` / ``call_at``, so ``asyncio.sleep``, ``asyncio.wait_for``,
``asyncio.timeout``, ``asyncio.gather`` and tasks work as usual.

Handlers do not use this module directly: ``wasmserve_sdk.serve`` runs an
``async def handle`` on it. Coroutines wait on a pollable with
``await wait_for_pollable(pollable)``.

Example::

    loop = PollLoop()
    loop.run_until_complete(asyncio.sleep(0.1))  # one poll on a timer
"""

import asyncio
import collections
import heapq

from wit_world.imports import monotonic_clock, poll

__all__ = ["PollLoop", "wait_for_pollable"]

_NANOS = 1_000_000_000


class PollLoop(asyncio.AbstractEventLoop):
    """The event loop ``serve`` runs async handlers on (one per request).

    Example: ``PollLoop().run_until_complete(main())``
    """

    def __init__(self):
        self._ready = collections.deque()
        self._timers = []  # heap of (when, sequence, TimerHandle)
        self._sequence = 0
        self._waiters = []  # (pollable, future) pairs
        self._running = False
        self._closed = False
        self._exception = None

    # -- running ---------------------------------------------------------

    def run_until_complete(self, future):
        future = asyncio.ensure_future(future, loop=self)
        self._running = True
        asyncio.events._set_running_loop(self)
        try:
            while not future.done():
                self._run_once()
                if self._exception is not None:
                    raise self._exception
        finally:
            asyncio.events._set_running_loop(None)
            self._running = False
        return future.result()

    def _run_once(self):
        now = self.time()
        while self._timers and (self._timers[0][2].cancelled() or self._timers[0][0] <= now):
            _, _, handle = heapq.heappop(self._timers)
            if not handle.cancelled():
                self._ready.append(handle)
        if not self._ready:
            self._wait()
            return
        for _ in range(len(self._ready)):
            handle = self._ready.popleft()
            if not handle.cancelled():
                handle._run()

    def _wait(self):
        """One ``poll``: on the awaited pollables and the nearest timer."""
        live = []
        for pollable, waiter in self._waiters:
            if waiter.done():  # cancelled (a timeout won): drop its pollable
                pollable.__exit__(None, None, None)
            else:
                live.append((pollable, waiter))
        self._waiters = live
        pollables = [pollable for pollable, _ in live]
        timer = None
        if self._timers:
            deadline = max(int(self._timers[0][0] * _NANOS), 0)
            timer = monotonic_clock.subscribe_instant(deadline)
            pollables.append(timer)
        if not pollables:
            raise RuntimeError("the handler awaits something that can never happen")
        ready = set(poll.poll(pollables))
        self._waiters = []
        for index, (pollable, waiter) in enumerate(live):
            if index in ready:
                pollable.__exit__(None, None, None)
                waiter.set_result(None)
            else:
                self._waiters.append((pollable, waiter))
        if timer is not None:
            timer.__exit__(None, None, None)

    # -- scheduling ------------------------------------------------------

    def time(self):
        return monotonic_clock.now() / _NANOS

    def call_soon(self, callback, *args, context=None):
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_later(self, delay, callback, *args, context=None):
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when, callback, *args, context=None):
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._timers, (when, self._sequence, handle))
        self._sequence += 1
        return handle

    def _timer_handle_cancelled(self, handle):
        pass  # cancelled timers are skipped when they come due

    def create_future(self):
        return asyncio.Future(loop=self)

    def create_task(self, coro, *, name=None, context=None):
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def wait_for_pollable(self, pollable):
        """A future resolved when ``pollable`` is ready (which it consumes)."""
        waiter = self.create_future()
        self._waiters.append((pollable, waiter))
        return waiter

    # -- state -----------------------------------------------------------

    def get_debug(self):
        return False

    def is_running(self):
        return self._running

    def is_closed(self):
        return self._closed

    def stop(self):
        self._running = False

    def close(self):
        self._closed = True
        for pollable, _ in self._waiters:
            pollable.__exit__(None, None, None)
        self._waiters = []

    async def shutdown_asyncgens(self):
        pass

    def call_exception_handler(self, context):
        # An exception nobody awaited (a task that failed on its own).
        if self._exception is None:
            self._exception = context.get("exception")

    def default_exception_handler(self, context):
        self.call_exception_handler(context)


async def wait_for_pollable(pollable):
    """Waits, without using CPU, until ``pollable`` is ready; consumes it.

    Example: ``await wait_for_pollable(stream.subscribe())``
    """
    await asyncio.get_running_loop().wait_for_pollable(pollable)
