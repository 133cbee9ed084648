"""Run echod as ``python -m echod``."""

import sys

from echod.cli import main

sys.exit(main())
