"""Address spaces for the engine, behind the :class:`~kdamon.engine.ops.base.Operations` protocol.

* :mod:`~kdamon.engine.ops.synthetic`: simulated spaces with known ground truth;
* :mod:`~kdamon.engine.ops.vaddr`: live processes, with the access checks of
  :mod:`~kdamon.engine.ops.checks` (page_idle, uffd, soft_dirty, smaps);
* :mod:`~kdamon.engine.ops.paddr`: physical memory through idle page tracking;
* :mod:`~kdamon.engine.ops.common`: what they share (the access check loop, scoring);
* :mod:`~kdamon.engine.ops.probe`: which check a process can be watched with, and why;
* :mod:`~kdamon.engine.ops.registry`: the operations set a context asks for.
"""
