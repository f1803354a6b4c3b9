"""kdamon's DAMON conformance suite: pytest tests that run inside a kdamon guest.

Run it with ``kdamon check --kernel NAME``; each module is one group of
checks (``abi``, ``adaptation``, ``ages``, ``debugfs``, ``errno``,
``invariants``, ``modules``, ``monitor``, ``patterns``, ``schemes``,
``state``, ``trace``) and each test's docstring is its check's title.
Modules run in that (file name) order, so a mutant run that stops at the
first failure reaches the cheap, sensitive region checks early.
"""
