"""Access patterns with known ground truth, for the synthetic address space.

A pattern covers ``[base, base + size)``.  Pages of the *hot* area are
accessed at ``hot_rate_hz`` times per second, all others at
``cold_rate_hz``; a page counts as accessed in a time window of length
``T`` with probability ``1 - exp(-rate * T)`` (infinite rate: always, zero:
never), so longer sampling intervals see more accesses, as on a real
system.  Whether a given page is accessed in a given window is a
deterministic hash of the seed, the page and the window start, so ground
truth can be queried independently of any monitor.

Kinds:

* ``hotcold``: the hot area stays at ``hot_offset``;
* ``stairs``: the hot area moves forward by its own size every ``step_us``,
  wrapping around at the end of the space;
* ``zigzag``: like ``stairs`` but it walks back from the end instead of
  wrapping.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import numpy as np
import numpy.typing as npt

from kdamon.engine.regions import PAGE_SIZE

__all__ = ["PatternKind", "SyntheticPattern"]

PatternKind = Literal["hotcold", "stairs", "zigzag"]
_KINDS = ("hotcold", "stairs", "zigzag")


def _positive(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0 or value % PAGE_SIZE:
        raise ValueError(f"{attribute.name} must be a positive multiple of {PAGE_SIZE}, got {value}")


def _splitmix64(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """A fast, well-mixed 64-bit hash (SplitMix64's finaliser), vectorised."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@attrs.frozen
class SyntheticPattern:
    """A simulated address space whose hot pages are known at every moment."""

    kind: PatternKind = attrs.field(default="hotcold", validator=attrs.validators.in_(_KINDS))
    size: int = attrs.field(default=1 << 30, validator=_positive)
    hot_size: int = attrs.field(default=64 << 20, validator=_positive)
    hot_offset: int = 0
    base: int = 0
    step_us: int = 1_000_000
    hot_rate_hz: float = math.inf
    cold_rate_hz: float = 0.0
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if self.hot_size > self.size:
            raise ValueError(f"hot_size ({self.hot_size}) must not exceed size ({self.size})")
        if self.hot_offset % PAGE_SIZE or not 0 <= self.hot_offset <= self.size - self.hot_size:
            raise ValueError(
                "hot_offset must be page aligned and keep the hot area inside "
                f"the space (0..{self.size - self.hot_size})"
            )
        if self.base % PAGE_SIZE or self.base < 0:
            raise ValueError(f"base must be a non-negative multiple of {PAGE_SIZE}")
        if self.step_us <= 0:
            raise ValueError("step_us must be positive")

    @property
    def end(self) -> int:
        return self.base + self.size

    def hot_range(self, time_us: int) -> tuple[int, int]:
        """The hot area ``[start, end)`` at ``time_us``."""
        if self.kind == "hotcold":
            offset = self.hot_offset
        else:
            positions = max(self.size // self.hot_size, 1)
            step = time_us // self.step_us
            if self.kind == "stairs":
                index = step % positions
            else:
                period = max(2 * (positions - 1), 1)
                phase = step % period
                index = phase if phase < positions else period - phase
            offset = min(self.hot_offset + index * self.hot_size, self.size - self.hot_size)
        start = self.base + offset
        return start, start + self.hot_size

    @staticmethod
    def _probability(rate_hz: float, window_us: int) -> float:
        if rate_hz <= 0 or window_us <= 0:
            return 0.0
        if math.isinf(rate_hz):
            return 1.0
        return -math.expm1(-rate_hz * window_us / 1e6)

    def accessed(self, addrs: npt.NDArray[np.int64], start_us: int, end_us: int) -> npt.NDArray[np.bool_]:
        """Ground truth: was the page of each address accessed in ``[start_us, end_us)``?

        The hot area's position is the one at ``start_us``.
        """
        hot_start, hot_end = self.hot_range(start_us)
        hot = (addrs >= hot_start) & (addrs < hot_end)
        window = end_us - start_us
        probability = np.where(
            hot, self._probability(self.hot_rate_hz, window), self._probability(self.cold_rate_hz, window)
        )
        pages = (addrs // PAGE_SIZE).astype(np.uint64)
        window_key = ((self.seed << 32) ^ start_us) & (2**64 - 1)
        key = pages ^ _splitmix64(np.full(1, window_key, dtype=np.uint64))
        draws = _splitmix64(key).astype(np.float64) / float(2**64)
        result: npt.NDArray[np.bool_] = draws < probability
        return result

    def accessed_in_interval(self, addrs: npt.NDArray[np.int64], k: int, sample_us: int) -> npt.NDArray[np.bool_]:
        """Ground truth for sampling interval ``k`` of a run with a fixed interval."""
        return self.accessed(addrs, k * sample_us, (k + 1) * sample_us)
