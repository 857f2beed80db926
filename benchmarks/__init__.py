"""flowactor's benchmark harness: flowactor against the anyio floor and against Prefect.

Run it as `python -m benchmarks [SCENARIO...]` (or `flowactor bench ...`); `--help` lists the
options. The entry point is `benchmarks.cli.main`. Every measured round runs in a fresh
subprocess (`benchmarks.isolate`), so this package stays import-light: measurement processes
import only what their job needs.
"""
