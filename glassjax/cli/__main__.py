"""``python -m glassjax.cli``: the ``glassjax`` command."""
import sys

from glassjax.cli import main

sys.exit(main())
