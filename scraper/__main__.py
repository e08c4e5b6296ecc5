"""``python -m scraper``: installs the stop signals before anything heavy is imported,
then runs the command line, and keeps those signals from killing it as it exits."""

import sys

from .cli.signals import SIGNALS

SIGNALS.install()

from .cli import main  # noqa: E402  (after the signal handlers, on purpose)

status = main()
SIGNALS.exiting(status)  # a stop signal while the interpreter shuts down changes nothing
sys.exit(status)
