"""`python -m xstilts`: the command line (`xstilts.cli`), as the rules run it (the workflow's own interpreter)."""

import sys

from xstilts.cli import main

sys.exit(main())
