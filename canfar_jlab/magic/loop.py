"""Running the async core from a magic, which is called synchronously inside a kernel whose own
event loop is already running.

`asyncio.run` would fail there ("cannot be called from a running event loop") and patching the
kernel's loop (nest_asyncio) changes how every other library's async code behaves. Instead the
magic owns one private event loop in a daemon thread and submits coroutines to it. Whatever a
coroutine wants shown (log lines, progress) is put on a queue and shown by the caller's thread,
the kernel's main thread, so output lands in the cell that runs the magic.

Interrupts: Jupyter's "interrupt kernel" (and Ctrl-C in a terminal) sends SIGINT, which Python
turns into KeyboardInterrupt in the main thread, here while it waits on the queue. `call`
then cancels the coroutine (or, for `cancellable=False` work such as creating sessions, lets it
finish so nothing is left half-recorded) and raises `Interrupted` once the coroutine has
cleaned up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
Emit = Callable[[Any], None]

CLEANUP_TIMEOUT = 10.0  # how long an interrupted coroutine gets to close its client


class Interrupted(Exception):
    """The user interrupted the cell; `result` holds what uncancellable work returned."""

    def __init__(self, result: Any = None) -> None:
        super().__init__("interrupted")
        self.result = result


_DONE = object()


class BackgroundLoop:
    """A private asyncio loop in a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="canfar-jlab-magic", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def call(
        self,
        work: Callable[[Emit], Awaitable[T]],
        show: Callable[[Any], None],
        *,
        cancellable: bool = True,
        finishing_note: Any = None,
    ) -> T:
        """Run `work(emit)` on the loop; pass each emitted item to `show` in this thread.

        Returns what `work` returns, raises what it raises, or raises `Interrupted` after a
        KeyboardInterrupt (once the coroutine has been cancelled and has cleaned up, or, when
        not `cancellable`, once it has finished; `finishing_note` is shown meanwhile).
        """
        loop = self._running_loop()
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        finished = threading.Event()

        async def guarded() -> T:
            try:
                return await work(items.put)
            finally:
                finished.set()
                items.put(_DONE)

        future: concurrent.futures.Future[T] | None = None
        try:
            future = asyncio.run_coroutine_threadsafe(guarded(), loop)
            while True:
                item = items.get()  # a KeyboardInterrupt (SIGINT) lands here
                if item is _DONE:
                    break
                show(item)
            return future.result()
        except KeyboardInterrupt:
            if future is None:  # interrupted while submitting
                raise Interrupted() from None
            if cancellable:
                future.cancel()  # cancels the task on the loop; its finally blocks run there
                _wait_quietly(lambda: finished.wait(CLEANUP_TIMEOUT))
                raise Interrupted() from None
            if finishing_note is not None:
                show(finishing_note)
            _wait_quietly(lambda: concurrent.futures.wait([future]))
            # The work's own error, if it failed, says more than "interrupted".
            raise Interrupted(future.result() if future.done() else None) from None

    def close(self) -> None:
        with self._lock:
            loop, self._loop, self._thread = self._loop, None, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)


def _wait_quietly(wait: Callable[[], object]) -> None:
    """Wait; a second Ctrl-C stops the waiting, not the work being waited for."""
    try:
        wait()
    except KeyboardInterrupt:
        pass
