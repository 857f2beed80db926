"""`python -m benchmarks`: run the benchmark harness."""

import sys

from .cli import main

sys.exit(main())
