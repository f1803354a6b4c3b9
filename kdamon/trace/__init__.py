"""DAMON's trace events as data, whoever reads them (a live tracefs session, a ``perf script`` file).

* :mod:`~kdamon.trace.events`: the events kdamon reads and their binary layout from ``format`` files;
* :mod:`~kdamon.trace.pages`: ring-buffer pages (``trace_pipe_raw``), damon_aggregated runs as columns;
* :mod:`~kdamon.trace.text`: ``perf script``/``trace_pipe`` text, the fast damon_aggregated block parser;
* :mod:`~kdamon.trace.lines`: the columns every decoder produces;
* :mod:`~kdamon.trace.assemble`: the one assembler of events into snapshots and other records;
* :mod:`~kdamon.trace.synth`: synthesised trace output for tests and benchmarks.

Imports nothing of kdamon but :mod:`kdamon.model` and :mod:`kdamon.errors`.
"""
