"""`python -m benchmarks.plot RESULTS.json OUT.png`: redraw a saved run (`runtime.bench.plot`)."""

import sys

from runtime.bench.plot import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m benchmarks.plot"))
