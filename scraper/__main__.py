"""``python -m scraper``: the command line (see scraper.cli)."""

from .cli import main

raise SystemExit(main())
