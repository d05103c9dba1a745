"""`python -m leadscore.rulesfiles validate [--write] [DIR]` (see `cli.py`)."""

import sys

from leadscore.rulesfiles.cli import main

sys.exit(main())
