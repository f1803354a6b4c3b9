"""A pure-Python DAMON: the kernel's monitoring loop, regions and DAMOS in user space.

Where the kernel's DAMON is missing (or for simulations and tests), a
:class:`Monitor` runs one :class:`~kdamon.model.config.Context` with an
operations set from :mod:`kdamon.engine.ops` and produces the same
:class:`~kdamon.model.results.Snapshot` and
:class:`~kdamon.model.results.SchemeStats` as the kernel drivers::

    monitor = Monitor(context, callbacks=Callbacks(after_aggregation=handle))
    monitor.start(); ...; monitor.stop(); monitor.join()

or, on simulated time with known access patterns::

    ops = SyntheticOps([SyntheticPattern(kind="stairs")])
    Monitor(synthetic_context(1), ops, seed=1).run_virtual(duration_us=10_000_000)
"""

from kdamon.engine.clock import Clock, RealClock, VirtualClock
from kdamon.engine.core import Callback, Callbacks, Monitor
from kdamon.engine.ops.patterns import SyntheticPattern
from kdamon.engine.ops.probe import ProbeResult, probe
from kdamon.engine.ops.registry import ops_for_context
from kdamon.engine.ops.synthetic import SyntheticOps, synthetic_context

__all__ = [
    "Callback",
    "Callbacks",
    "Clock",
    "Monitor",
    "ProbeResult",
    "RealClock",
    "SyntheticOps",
    "SyntheticPattern",
    "VirtualClock",
    "ops_for_context",
    "probe",
    "synthetic_context",
]
