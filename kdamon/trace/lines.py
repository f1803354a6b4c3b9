"""``damon_aggregated`` events as columns: what every decoder produces and the assembler consumes."""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt

from kdamon.model.snapshot import REGION_DTYPE, RegionArray

__all__ = ["AggregatedLines", "U64Array"]

U64Array = npt.NDArray[np.uint64]


@attrs.frozen(eq=False, slots=True)
class AggregatedLines:
    """One column per field of a run of ``damon_aggregated`` events, in arrival order.

    ``kdamond`` tells kdamonds apart: the ``N`` of a ``kdamond.N`` thread name
    in text, the thread's pid in ring-buffer pages (a trace session maps it to
    the kdamond's index).
    """

    kdamond: U64Array
    time_ns: U64Array
    target: U64Array
    nr_regions: U64Array
    regions: RegionArray

    @classmethod
    def empty(cls) -> AggregatedLines:
        none = np.empty(0, dtype=np.uint64)
        return cls(none, none, none, none, np.empty(0, dtype=REGION_DTYPE))

    @property
    def size(self) -> int:
        """The number of events."""
        return int(self.time_ns.shape[0])

    def take(self, index: npt.NDArray[np.intp] | slice) -> AggregatedLines:
        """The events at ``index`` (a slice or an index array)."""
        return AggregatedLines(
            self.kdamond[index], self.time_ns[index], self.target[index], self.nr_regions[index], self.regions[index]
        )

    @classmethod
    def concatenate(cls, parts: list[AggregatedLines]) -> AggregatedLines:
        """The events of ``parts`` one after the other."""
        if not parts:
            return cls.empty()
        if len(parts) == 1:
            return parts[0]
        return cls(*(np.concatenate([getattr(p, a.name) for p in parts]) for a in attrs.fields(cls)))
