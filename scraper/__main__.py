"""``python -m scraper``: installs the stop signals before anything heavy is imported,
then runs the command line."""

import sys

from .cli.signals import SIGNALS

SIGNALS.install()

from .cli import main  # noqa: E402  (after the signal handlers, on purpose)

sys.exit(main())
