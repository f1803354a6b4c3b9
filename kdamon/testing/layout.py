"""Where a running workload keeps its areas and how its access pattern goes over time."""

from __future__ import annotations

import json

import attrs

from kdamon.errors import KdamonError

__all__ = ["KINDS", "Layout"]

KINDS = ("hot_cold", "stairs", "zigzag", "stripes")
"""The access patterns of :mod:`kdamon.testing.workloads`:

* ``hot_cold``: area 0 (hot) all the time, area 1 (cold) never;
* ``stairs``: area ``i`` during step ``i``, then the next one, cycling;
* ``zigzag``: like stairs, but back and forth (0 1 2 3 2 1 0 ...);
* ``stripes``: the even areas all the time, the odd ones never.
"""


@attrs.frozen
class Layout:
    """Where a running workload keeps its areas and how its pattern goes."""

    kind: str
    pid: int
    areas: tuple[tuple[int, int], ...]  # [start, end) of each area, in area order
    step_s: float  # how long each stairs/zigzag step lasts (0 for hot_cold and stripes)
    t0: float  # time.monotonic() when the pattern started
    pass_us: float  # measured time of one pass over one area (stripes: over every accessed area)
    uffd: bool = False  # whether the areas are registered for userfaultfd async write-protect

    @property
    def span(self) -> tuple[int, int]:
        """The smallest range that covers every area."""
        return min(a[0] for a in self.areas), max(a[1] for a in self.areas)

    @property
    def hot(self) -> tuple[int, int]:
        """The hot area of a ``hot_cold`` workload."""
        return self._hot_cold()[0]

    @property
    def cold(self) -> tuple[int, int]:
        """The cold area of a ``hot_cold`` workload."""
        return self._hot_cold()[1]

    def _hot_cold(self) -> tuple[tuple[int, int], tuple[int, int]]:
        if self.kind != "hot_cold":
            raise KdamonError(f"a {self.kind} workload has no single hot and cold area; use .areas and .hot_areas()")
        return self.areas[0], self.areas[1]

    def sequence(self) -> tuple[int, ...]:
        """The order in which areas are hot, one per step, repeating."""
        n = len(self.areas)
        if self.kind == "zigzag" and n > 1:
            return tuple(range(n)) + tuple(range(n - 2, 0, -1))
        return tuple(range(n))

    def hot_areas(self, now: float) -> tuple[int, ...]:
        """Every area being accessed at monotonic time ``now``."""
        if self.kind == "stripes":
            return tuple(range(0, len(self.areas), 2))
        return (self.hot_area(now),)

    def hot_area(self, now: float) -> int:
        """The (first) area being accessed at monotonic time ``now``."""
        if self.kind in ("hot_cold", "stripes"):
            return 0
        seq = self.sequence()
        return seq[int(max(0.0, now - self.t0) // self.step_s) % len(seq)]

    def step_phase(self, now: float) -> float:
        """How far into its current step the pattern is at ``now`` (0 to 1)."""
        if self.step_s <= 0:
            return 0.0
        return (max(0.0, now - self.t0) % self.step_s) / self.step_s

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Layout:
        data = json.loads(text)
        data["areas"] = tuple((int(a), int(b)) for a, b in data["areas"])
        return cls(**data)
