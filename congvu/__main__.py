"""``python -m congvu`` is the ``congvu`` command."""

import sys

from .cli import main

sys.exit(main())
