"""``python -m tools.bench``: see :mod:`tools.bench.report`."""

import sys

from tools.bench.report import main

sys.exit(main())
