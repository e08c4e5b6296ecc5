"""What the command line shows on standard error: logging set-up, and progress (a live
line on a terminal, a periodic INFO line otherwise)."""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["Progress", "setup_logging"]

log = logging.getLogger("scraper")


class Progress:
    """A live line on a terminal; a periodic INFO log line otherwise."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def interval(self, configured: float) -> float:
        return 0.5 if self.tty else configured

    def __call__(self, p: dict[str, Any]) -> None:
        line = (f"pages {p['pages']} | items {p['items']} | {p['pages_per_s']:.1f} pages/s | "
                f"queued {p['queued']} | in flight {p['in_flight']} | errors {p['errors']}")
        if self.tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if p.get("final") else ""))
            self.stream.flush()
        elif not p.get("final"):
            log.info("progress: %s", line)


def setup_logging(level: str) -> None:
    """Log lines to standard error (the only place handlers are configured)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("urllib3", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
