"""`python -m bench`: the benchmark (bench.run)."""

import sys

from bench.run import main

sys.exit(main())
