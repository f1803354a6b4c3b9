"""kdamon's DAMON conformance suite: pytest tests that run inside a kdamon guest.

Run it with ``kdamon check --kernel NAME``; each module is one group of
checks (``abi``, ``state``, ``errno``, ``monitor``, ``schemes``, ``trace``,
``invariants``) and each test's docstring is its check's title.
"""
