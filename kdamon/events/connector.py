"""The kernel's process connector (``CONFIG_PROC_EVENTS``) in a receiving thread.

:class:`ConnectorThread` subscribes to every process event of the machine
through pyroute2's ``ProcEventSocket`` and hands each message (a dict-like
with ``event`` such as ``PROC_EVENT_FORK`` and the event's fields) to a
callback, in its own thread.  It needs root, and the initial network
namespace (the connector socket exists only there).

pyroute2 keeps its own buffer, so the thread blocks in ``get()`` (a
``select()`` on the socket followed by ``get()`` loses events) and is ended
by cancelling the socket's event loop from the outside.  When a receive
fails (the kernel drops events when the socket buffer overflows), the
``lost`` callback runs, so that its owner can look in ``/proc`` for what it
missed; after too many failures in a row the thread gives up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ConnectorThread"]

_READY_TIMEOUT_S = 10.0
_STOP_RETRY_S = 0.05
_MAX_RECEIVE_ERRORS = 100  # consecutive failed receives before the thread gives up


class ConnectorThread:
    """Process connector messages, each passed to ``on_message`` in a thread of its own."""

    def __init__(
        self, on_message: Callable[[Any], None], on_lost: Callable[[], None], *, name: str = "kdamon-proc-connector"
    ) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._name = name
        self._thread: threading.Thread | None = None
        self._loop: Any = None
        self._ready = threading.Event()
        self._stopping = False
        self.error: BaseException | None = None
        """Why the thread could not subscribe, or why it gave up receiving."""

    def start(self) -> None:
        """Subscribe; raise OSError when the connector cannot be had here."""
        try:
            from pyroute2 import ProcEventSocket  # noqa: F401  (import errors surface here)
        except ImportError as exc:
            raise OSError(f"pyroute2 cannot be imported ({exc}): pip install 'kdamon[events]'") from exc
        self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(_READY_TIMEOUT_S):
            raise OSError("the process connector did not answer the subscription")
        if self.error is not None:
            raise OSError(f"the process connector is unavailable: {self.error}") from self.error

    def _main(self) -> None:
        # pyroute2 binds a socket's event loop to the thread that creates it:
        # create, subscribe and receive in this thread only.
        import asyncio

        from pyroute2 import ProcEventSocket

        try:
            sock = ProcEventSocket()
        except BaseException as exc:
            self.error = exc
            self._ready.set()
            return
        try:
            sock.bind()
            sock.control(listen=True)
            self._loop = sock.asyncore.event_loop
        except BaseException as exc:
            self.error = exc
            sock.close()
            self._ready.set()
            return
        self._ready.set()
        errors = 0
        try:
            while True:
                try:
                    messages = sock.get()
                except asyncio.CancelledError:
                    return  # stop()
                except Exception as exc:  # e.g. ENOBUFS: the kernel dropped events
                    errors += 1
                    if errors > _MAX_RECEIVE_ERRORS:
                        self.error = exc
                        return
                    self._on_lost()
                    continue
                if self._stopping:
                    return
                errors = 0
                for msg in messages:
                    self._on_message(msg)
        finally:
            sock.close()

    def stop(self) -> None:
        """End the thread and close the socket (idempotent)."""
        loop, thread = self._loop, self._thread
        self._stopping = True
        if loop is not None and thread is not None:
            import asyncio

            def cancel_all() -> None:
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            # A cancel that lands between two get() calls finds no task to cancel:
            # repeat until the thread is gone (it also checks _stopping after each get()).
            while thread.is_alive():
                try:
                    loop.call_soon_threadsafe(cancel_all)
                except RuntimeError:
                    pass  # the loop is closed: the thread is ending
                thread.join(_STOP_RETRY_S)
        elif thread is not None and not thread.is_alive():
            thread.join()  # (a thread stuck before subscribing is left to die with the process)
        self._thread = None
