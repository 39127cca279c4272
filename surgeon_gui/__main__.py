"""``python -m surgeon_gui`` runs the ``surgeon`` command line (see :mod:`surgeon_gui.cli`)."""
import sys

from .cli import main

sys.exit(main())
