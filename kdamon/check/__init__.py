"""``kdamon check``: a conformance and regression suite for a kernel's DAMON.

The checks are pytest tests (``kdamon/check/suite``) built on kdamon's pytest
plugin (``kdamon.pytest_plugin``).  In a guest they print one result line
per check on the console (``results``); the host parses those lines, renders
a table, JUnit XML and JSON, and compares kernels (``compare``, ``render``,
``junit``).  Importing this package imports nothing else.
"""

DEFAULT_MUTANT_FILES = ("mm/damon/core.c",)
"""What ``kdamon check --mutants`` mutates unless ``--files`` says otherwise."""
