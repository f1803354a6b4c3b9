"""Memory hotplug uevents (subsystem ``memory``) and a follower that keeps paddr regions current.

The kernel announces each memory block (``/sys/devices/system/memory/memoryN``)
with ``add``, ``online``, ``offline`` and ``remove`` uevents.  They are read
straight from the kernel's netlink socket through pyudev
(``Monitor.from_netlink(source="kernel")``), which needs libudev but no udev
daemon.  A running paddr kdamond keeps monitoring the ranges it was given:
:class:`PaddrFollower` recomputes the regions on every memory event and hands
changed ones to a callback (for a kernel kdamond: commit them through the
sysfs driver; for the engine: its update primitive).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from kdamon.errors import KernelError
from kdamon.events.memory import paddr_regions
from kdamon.model import Region

__all__ = ["MEMORY_ACTIONS", "MemoryEvent", "Observer", "PaddrFollower", "memory_event", "udev_memory_observer"]

MEMORY_ACTIONS = ("add", "online", "offline", "remove")
_BLOCK = re.compile(r"memory(\d+)$")

Handler = Callable[["MemoryEvent"], None]


@attrs.frozen
class MemoryEvent:
    """A memory block came, went online, went offline or went away."""

    action: str
    block: int | None  # N of memoryN (the block's first byte is N * block_size_bytes)
    devpath: str


def memory_event(device: Any) -> MemoryEvent | None:
    """The event of a pyudev device notification, None for other actions (``change``, ...)."""
    action = device.action
    if action not in MEMORY_ACTIONS:
        return None
    match = _BLOCK.search(device.sys_name or "")
    return MemoryEvent(action, int(match.group(1)) if match else None, device.device_path)


class Observer(Protocol):
    """A thread delivering events to a handler: ``pyudev.MonitorObserver``'s shape."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def udev_memory_observer(handler: Handler) -> Observer:
    """An observer of the kernel's memory uevents calling ``handler``.

    The socket is subscribed on return; the thread starts with ``start()``.
    """
    try:
        import pyudev
    except ImportError as exc:
        raise KernelError(
            f"memory hotplug events need pyudev ({exc}): pip install 'kdamon[events]', and the libudev1 system package"
        ) from exc
    try:
        monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
        monitor.filter_by("memory")
        monitor.start()  # subscribed from now on: events queue until the observer reads them
    except (OSError, ImportError) as exc:
        raise KernelError(
            f"cannot listen to kernel uevents ({exc}): this needs libudev1 and the initial network namespace"
        ) from exc

    def deliver(device: Any) -> None:
        event = memory_event(device)
        if event is not None:
            handler(event)

    observer: Observer = pyudev.MonitorObserver(monitor, callback=deliver, name="kdamon-uevents")
    return observer


class PaddrFollower:
    """Keeps a paddr target's regions equal to the machine's System RAM.

    On each memory event the regions are recomputed (``regions``, default
    :func:`~kdamon.events.memory.paddr_regions` from ``/proc/iomem``); when
    they changed, ``update(regions)`` is called from the observer's thread.
    The kernel announces a block's ``remove`` before it releases the range
    from ``/proc/iomem``, so a ``remove`` that changed nothing yet is followed
    by re-reads for up to ``settle_s`` seconds from a second thread.
    An exception from ``update`` stops following and is re-raised by
    :meth:`wait_updates` and :meth:`stop`.
    """

    def __init__(
        self,
        update: Callable[[tuple[Region, ...]], None],
        *,
        regions: Callable[[], tuple[Region, ...]] = paddr_regions,
        observe: Callable[[Handler], Observer] = udev_memory_observer,
        settle_s: float = 10.0,
    ) -> None:
        self._update = update
        self._compute = regions
        self._observe = observe
        self._settle_s = settle_s
        self._settle_until = 0.0
        self._settler: threading.Thread | None = None
        self._stopping = False
        self._observer: Observer | None = None
        self._changed = threading.Condition()
        self.regions: tuple[Region, ...] = ()
        self.events: list[MemoryEvent] = []
        self.nr_updates = 0
        self.error: BaseException | None = None

    def start(self) -> PaddrFollower:
        """Read the current regions and start following memory events."""
        self._stopping = False
        self._observer = self._observe(self._on_event)  # subscribe first: miss nothing
        self.regions = self._compute()
        self._observer.start()
        return self

    def stop(self) -> None:
        """Stop following; re-raises an error of the update callback."""
        if self._observer is not None:
            self._observer.stop()
            self._observer = None
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            settler, self._settler = self._settler, None
        if settler is not None:
            settler.join()
        self._raise_error()

    def __enter__(self) -> PaddrFollower:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_event(self, event: MemoryEvent) -> None:
        with self._changed:
            self.events.append(event)
            if not self._refresh() and event.action == "remove" and not self._stopping:
                self._settle_until = time.monotonic() + self._settle_s
                if self._settler is None:
                    self._settler = threading.Thread(target=self._settle, name="kdamon-iomem-settle", daemon=True)
                    self._settler.start()

    def _refresh(self) -> bool:
        """Recompute the regions and hand on a change (lock held); True when they changed."""
        if self.error is not None:
            return False
        changed = False
        try:
            new = self._compute()
            if new != self.regions:
                self._update(new)
                self.regions = new
                self.nr_updates += 1
                changed = True
        except BaseException as exc:  # kept for the caller's thread
            self.error = exc
        self._changed.notify_all()
        return changed

    def _settle(self) -> None:
        """Re-read the regions after a ``remove`` until they change or the window closes."""
        delay = 0.005
        with self._changed:
            while not self._stopping and self.error is None:
                left = self._settle_until - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(delay, left))
                delay = min(delay * 2, 0.25)
                if not self._stopping and self._refresh():
                    self._settle_until = 0.0
            if self._settler is threading.current_thread():
                self._settler = None

    def wait_updates(self, count: int, timeout: float | None = None) -> bool:
        """Wait until ``update`` was called ``count`` times in all; False on timeout."""
        with self._changed:
            done = self._changed.wait_for(lambda: self.nr_updates >= count or self.error is not None, timeout)
        self._raise_error()
        return done

    def _raise_error(self) -> None:
        if self.error is not None:
            raise KernelError(
                f"following memory hotplug stopped: updating the regions failed ({self.error})"
            ) from self.error
