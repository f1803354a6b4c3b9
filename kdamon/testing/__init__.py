"""Helpers for testing against DAMON, shipped so that kdamon's own tests, ``kdamon check``'s suite,
the pytest plugin and users' tests share them.

* :mod:`kdamon.testing.guest`: :func:`~kdamon.testing.guest.in_guest`, whether this process runs
  inside a kdamon QEMU guest (where DAMON is the test's own);
* :mod:`kdamon.testing.workloads`: processes whose memory access pattern is known, with their
  :mod:`~kdamon.testing.layout`, their memory (:mod:`~kdamon.testing.areas`) and its userfaultfd
  write-protect registration (:mod:`~kdamon.testing.uffd`);
* :mod:`kdamon.testing.raw_sysfs`: raw writes to DAMON's sysfs files, as another tool makes them;
* :mod:`kdamon.testing.waiting`: waiting on a condition instead of sleeping a fixed time.

The package may import the model, the engine and the kernel drivers; of the core package only the
code about testing (the pytest plugin, ``kdamon check``) imports it.  This module imports nothing,
so that the plugin can ask :func:`~kdamon.testing.guest.in_guest` cheaply.
"""
