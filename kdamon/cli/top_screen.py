"""The screen of ``kdamon top``: a live full-screen view on a terminal, totals lines in a pipe.

The watch runs in a thread that hands frames over a queue; the main thread
reads keys (raw mode, no echo) and redraws after each frame or key.  The
screen is drawn with plain ANSI escapes on the alternate screen, which is
left (and the terminal restored) on exit, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import queue
import select
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from kdamon.cli import common

if TYPE_CHECKING:
    from kdamon.backend.host import Host
    from kdamon.backend.live import Frame, Watch
    from kdamon.model.access import Temperature
    from kdamon.model.snapshot import Snapshot
    from kdamon.report.access import RegionFilter, Sort

OpenWatch = Callable[[argparse.Namespace, "Host"], "Watch"]
Frames = Callable[["Watch", float, Callable[[], bool]], Iterator["Frame"]]

_SORTS: tuple[Sort, ...] = ("hot", "age", "address")
_ENTER, _LEAVE = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l"
_HOME_CLEAR = "\x1b[H\x1b[2J"


def _summary_line(title: str, kept: Snapshot, temperature: Temperature) -> str:
    """One line of totals of a (filtered) snapshot."""
    from kdamon.model import format_duration_us, format_size
    from kdamon.model.access import summarise

    s = summarise(kept, temperature)

    def part(name: str, size: int) -> str:
        share = f"{100 * size / s.total_bytes:.0f}%" if s.total_bytes else "-"
        return f"{name} {format_size(size, approx=True)} {share}"

    idle = dict(s.idle_percentiles_us)
    return (
        f"{title}: {kept.nr_regions} regions, total {format_size(s.total_bytes, approx=True)}, "
        f"{part('hot', s.hot_bytes)}, {part('warm', s.warm_bytes)}, {part('cold', s.cold_bytes)}, "
        f"idle p50 {format_duration_us(abs(idle.get(50.0, 0)), approx=True)}"
    )


class _Screen:
    """What ``top`` draws: the state of the view and the drawing of one screen."""

    def __init__(
        self, args: argparse.Namespace, temperature: Temperature, region_filter: RegionFilter, color: bool
    ) -> None:
        self.history: deque[Frame] = deque(maxlen=max(args.history, 1))
        self.temperature = temperature
        self.region_filter = region_filter
        self.sort: Sort = args.sort if args.sort != "address" else "hot"
        self.target = 0
        self.color = color
        self.message = ""

    def frame_snapshots(self) -> list[Snapshot]:
        """The current target's snapshots (with the filter applied), oldest first."""
        out: list[Snapshot] = []
        for frame in self.history:
            chosen = [s for s in frame.snapshots if s.target_idx == self.target] or list(frame.snapshots[:1])
            out.extend(self.region_filter.apply(s) for s in chosen)
        return out

    def draw(self, watch: Watch, position: str, width: int, height: int) -> str:
        from kdamon.model import format_duration_us

        watched = watch.watched
        lines = [f"kdamon top  {watched.title(self.target)}  {position}"]
        snapshots = self.frame_snapshots()
        if not snapshots:
            lines.append(f"waiting for the next aggregation (every {format_duration_us(watched.aggr_us, approx=True)})")
            lines.extend(["", self._keys()])
            return "\n".join(line[:width] for line in lines)
        latest = snapshots[-1]
        lines.append(_summary_line("now", latest, self.temperature))
        lines.append(
            f"intervals: sample {format_duration_us(latest.sample_us, approx=True)}, "
            f"aggr {format_duration_us(latest.aggr_us, approx=True)}" + (f"; {self.message}" if self.message else "")
        )
        strip_rows = min(len(snapshots), max(height // 3, 3))
        lines.extend(self._strip(snapshots[-strip_rows:], width))
        room = max(height - len(lines) - 3, 2)
        lines.extend(self._regions(latest, width, room))
        lines.extend(["", self._keys()])
        return "\n".join(line if "\x1b" in line else line[:width] for line in lines[:height])

    def _strip(self, snapshots: list[Snapshot], width: int) -> list[str]:
        from kdamon.errors import KdamonError
        from kdamon.report.grid import heat_grid
        from kdamon.report.heatmap import COLOURS, LEVELS, levels_of

        columns = max(width - 2, 8)
        try:
            grid = heat_grid(snapshots, time_bins=len(snapshots), addr_bins=columns)
        except KdamonError as error:
            return [f"(no heatmap: {error})"]
        out = [f"heatmap: last {len(snapshots)} aggregations, newest at the bottom; address ->"]
        for row in levels_of(grid.values).tolist():
            if self.color:
                out.append("|" + "".join(f"\x1b[48;5;{COLOURS[v]}m{LEVELS[v]}" for v in row) + "\x1b[0m|")
            else:
                out.append("|" + "".join(LEVELS[v] for v in row) + "|")
        return out

    def _regions(self, snapshot: Snapshot, width: int, room: int) -> list[str]:
        from kdamon.model import format_duration_us, format_size
        from kdamon.report.access import sort_regions

        kept = snapshot  # filtered already
        top = snapshot.max_nr_accesses

        def row(start: int, end: int, nr_accesses: int, age: int) -> str:
            rate = f"{100 * nr_accesses / top:3.0f}%" if top else f"{nr_accesses}"
            return (
                f"{start:#14x} {format_size(end - start, approx=True):>8} {rate:>5} "
                f"{format_duration_us(age * snapshot.aggr_us, approx=True):>7}"
            )

        ordered = sort_regions(kept, self.sort).rows()[:room]
        idle = [r for r in sort_regions(kept, "age").rows() if r[2] == 0][:room]
        left = [f"regions by {self.sort}:".ljust(38)] + [row(*r) for r in ordered]
        right = ["coldest (idle longest):"] + [row(*r) for r in idle]
        half = max(width // 2, 40)
        return [
            (a.ljust(half) + b)[:width]
            for a, b in zip(
                left + [""] * (len(right) - len(left)), right + [""] * (len(left) - len(right)), strict=True
            )
        ]

    def _keys(self) -> str:
        return f"q quit  s sort ({self.sort})  n/p kdamond  t target ({self.target})"


def _pump(
    watch: Watch, frames: Frames, timeout_s: float, out: queue.SimpleQueue[object], stop: threading.Event
) -> None:
    try:
        for frame in frames(watch, timeout_s, stop.is_set):
            out.put(frame)
    except BaseException as error:  # handed to the main thread, which raises it
        out.put(error)
    out.put(None)


class _Watcher:
    """The current watch and its frame thread."""

    def __init__(self, watch: Watch, frames: Frames, timeout_s: float) -> None:
        self.watch = watch
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=_pump, args=(watch, frames, timeout_s, self.queue, self.stop), daemon=True, name="kdamon-top-watch"
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.watch.close()


def _plain(
    args: argparse.Namespace,
    watch: Watch,
    frames: Frames,
    timeout_s: float,
    temperature: Temperature,
    region_filter: RegionFilter,
) -> int:
    """Without a terminal: one totals line per target and aggregation."""
    shown = 0
    for frame in frames(watch, timeout_s, lambda: False):
        for snapshot in frame.snapshots:
            stamp = f"{snapshot.time_ns / 1e9:.3f}"
            print(
                _summary_line(
                    f"{stamp} {watch.watched.title(snapshot.target_idx)}", region_filter.apply(snapshot), temperature
                ),
                flush=True,
            )
        shown += 1
        if args.count is not None and shown >= args.count:
            break
    return 0


def run_top(
    args: argparse.Namespace,
    host: Host,
    open_watch: OpenWatch,
    frames: Frames,
    temperature: Temperature,
    region_filter: RegionFilter,
) -> int:
    """``kdamon top``: full screen on a terminal, totals lines otherwise."""
    timeout_s = args.timeout / 1e6
    watch = open_watch(args, host)
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        with watch:
            return _plain(args, watch, frames, timeout_s, temperature, region_filter)
    return _Interactive(
        args, host, watch, frames, timeout_s, _Screen(args, temperature, region_filter, common.use_color(sys.stdout))
    ).run()


class _Interactive:
    def __init__(
        self, args: argparse.Namespace, host: Host, watch: Watch, frames: Frames, timeout_s: float, screen: _Screen
    ) -> None:
        self.args, self.host, self.frames, self.timeout_s, self.screen = args, host, frames, timeout_s, screen
        self.watcher = _Watcher(watch, frames, timeout_s)
        self.shown = 0

    def _position(self) -> str:
        from kdamon.backend.live import watchable

        if self.watcher.watch.watched.id.key == "temporary":
            return "[temporary kdamond]"
        ids = [w.id for w in watchable(self.host)]
        current = self.watcher.watch.watched.id
        index = ids.index(current) + 1 if current in ids else 0
        return f"[kdamond {index}/{len(ids)}]"

    def _switch(self, step: int) -> None:
        from kdamon.backend.live import open_watch, watchable

        current = self.watcher.watch.watched
        if current.id.key == "temporary":
            self.screen.message = "a temporary kdamond: no other to switch to"
            return
        everything = watchable(self.host)
        ids = [w.id for w in everything]
        index = ids.index(current.id) if current.id in ids else -1
        chosen = everything[(index + step) % len(everything)] if everything else None
        if chosen is None or chosen.id == current.id:
            self.screen.message = "no other kdamond runs"
            return
        self.watcher.close()
        self.watcher = _Watcher(open_watch(self.host, chosen), self.frames, self.timeout_s)
        self.screen.history.clear()
        self.screen.target = 0
        self.screen.message = f"switched to {chosen.id}"

    def _key(self, key: str) -> bool:
        """Handle a key; False to quit."""
        if key in ("q", "Q", "\x03"):
            return False
        if key == "s":
            self.screen.sort = _SORTS[(_SORTS.index(self.screen.sort) + 1) % len(_SORTS)]
        elif key in ("n", "p"):
            self._switch(1 if key == "n" else -1)
        elif key == "t":
            targets = max(len(self.watcher.watch.watched.targets), 1)
            self.screen.target = (self.screen.target + 1) % targets
        return True

    def _redraw(self) -> None:
        size = os.get_terminal_size(sys.stdout.fileno())
        columns, lines = (size.columns, size.lines) if size.columns and size.lines else (80, 24)  # unset size
        text = self.screen.draw(self.watcher.watch, self._position(), columns, lines - 1)
        sys.stdout.write(_HOME_CLEAR + text)
        sys.stdout.flush()

    def run(self) -> int:
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        sys.stdout.write(_ENTER)
        try:
            tty.setcbreak(fd)
            self._redraw()
            while True:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready and not self._key(os.read(fd, 1).decode(errors="replace")):
                    break
                changed = bool(ready)
                while True:
                    try:
                        item = self.watcher.queue.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    if item is None:
                        self.screen.message = f"{self.watcher.watch.watched.id} stopped"
                    else:
                        self.screen.history.append(item)  # type: ignore[arg-type]
                        self.shown += 1
                    changed = True
                if changed:
                    self._redraw()
                if self.args.count is not None and self.shown >= self.args.count:
                    break
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
            sys.stdout.write(_LEAVE)
            sys.stdout.flush()
            self.watcher.close()
        common.say(f"watched {self.watcher.watch.watched.id} for {self.shown} aggregations")
        return 0
