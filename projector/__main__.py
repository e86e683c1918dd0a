"""`python -m projector`: run one projector instance (settings from STENO_* variables)."""

import sys

from projector.entry import main

sys.exit(main())
