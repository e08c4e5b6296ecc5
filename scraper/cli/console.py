"""What the command line shows on standard error: logging set-up, one-line errors, and
progress (a live line on a terminal, a periodic INFO line otherwise).

On a terminal a log line written while the live line is shown would be glued to
it; the one handler clears the live line, writes the record, and draws the live
line again below it, under one lock shared with the progress writer."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

__all__ = ["CommandFailed", "Progress", "report_error", "setup_logging"]

log = logging.getLogger("scraper")


class CommandFailed(Exception):
    """A command that could not do its job once started (a page that could not be
    fetched, a contract that failed): ``main`` prints the message as one line, exit 1."""


def report_error(message: str) -> None:
    """``scraper: error: MESSAGE`` as exactly one line on standard error."""
    sys.stderr.write(f"scraper: error: {' '.join(message.split())}\n")
    sys.stderr.flush()


_CLEAR = "\r\x1b[K"


class _LiveLine:
    """The live progress line currently shown on standard error ("" when none)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.text = ""


_LIVE = _LiveLine()


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]  # typeshed: generic on the stream
    """Writes records to standard error, keeping the live line (if any) below them."""

    def emit(self, record: logging.LogRecord) -> None:
        with _LIVE.lock:
            if not _LIVE.text:
                super().emit(record)
                return
            try:
                msg = self.format(record)
                self.stream.write(f"{_CLEAR}{msg}\n{_LIVE.text}")
                self.flush()
            except Exception:
                self.handleError(record)


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
            final = bool(p.get("final"))
            with _LIVE.lock:
                _LIVE.text = "" if final else line
                self.stream.write(_CLEAR + line + ("\n" if final else ""))
                self.stream.flush()
        elif not p.get("final"):
            log.info("progress: %s", line)


def setup_logging(level: str) -> None:
    """Log lines to standard error (the only place handlers are configured)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = _Handler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("urllib3", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
