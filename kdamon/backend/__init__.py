"""One Monitor API over kernel DAMON (sysfs, legacy debugfs) and kdamon's engine.

* :mod:`~kdamon.backend.host`: where a machine's DAMON interfaces are
  (injectable paths) and the drivers on them;
* :mod:`~kdamon.backend.types`: kdamond ids, status records, the
  :class:`~kdamon.backend.types.Backend` protocol;
* :mod:`~kdamon.backend.choose`: ``choose_backend(request, prefer, host=)``,
  the backend and why;
* :mod:`~kdamon.backend.sysfs_backend`, :mod:`~kdamon.backend.engine_backend`:
  the backends; :mod:`~kdamon.backend.control`: status of every kdamond;
* :mod:`~kdamon.backend.module_params`: the DAMON modules' parameters;
* :mod:`~kdamon.backend.damo_config`: the peer's kdamonds JSON as a Config.

Nothing is imported here, so that each command pays only for what it uses.
"""
