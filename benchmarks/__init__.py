"""flowactor's benchmark harness: flowactor against the anyio floor, Prefect and DBOS.

Run it as `python -m benchmarks [SCENARIO...]` (or `flowactor bench --suite ...` from a
checkout); `--help` lists the options. The entry point is `benchmarks.cli.main`. The measuring
core (every round in a fresh process, statistics, table, JSON, plot) is the installed
`runtime.bench`; this package holds the project's own scenarios, built on it. Measurement
processes import only what their job needs.
"""
