"""The live stats file of a running crawl (``run --stats-file PATH``): its progress
snapshots as JSON lines, appended while it runs, read by ``serve`` for the dashboard's
live counters and chart.

One line per snapshot: ``{"t": UNIX TIME, "elapsed": S, "pages": N, "items": N,
"errors": N, "pages_per_s": X, "queued": N, "in_flight": N, "final": BOOL}``. A line
is written at most every ``interval`` seconds early on, and less often as the crawl
gets old (every elapsed/600 s, at most every ``MAX_GAP`` s), so a day-long crawl
leaves about ten thousand lines, not a hundred thousand. A reader may see a last
line being written: it skips a line that does not parse.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["MAX_GAP", "StatsFile", "read_stats"]

#: The longest gap between two lines of a crawl that keeps running.
MAX_GAP = 10.0
_KEYS = ("elapsed", "pages", "items", "errors", "pages_per_s", "queued", "in_flight")


class StatsFile:
    """An ``on_progress`` callback that appends each snapshot to ``path`` (at most every
    ``interval`` s, see the module docstring) and passes every snapshot to ``then``,
    called no more often than ``then_every`` seconds (and for the final one)."""

    def __init__(self, path: str | Path, *, interval: float = 1.0,
                 then: Callable[[dict[str, Any]], None] | None = None,
                 then_every: float = 0.0) -> None:
        self.path = Path(path)
        self.interval = interval
        self.then = then
        self.then_every = then_every
        self._last_line: float | None = None
        self._last_then: float | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")  # a fresh series for this run

    def __call__(self, snapshot: dict[str, Any]) -> None:
        now = time.monotonic()
        final = bool(snapshot.get("final"))
        elapsed = float(snapshot.get("elapsed") or 0.0)
        gap = min(max(self.interval, elapsed / 600), MAX_GAP)
        if final or self._last_line is None or now - self._last_line >= gap - 0.05:
            self._last_line = now
            self._append(snapshot, final)
        if self.then is not None and (final or self._last_then is None
                                      or now - self._last_then >= self.then_every - 0.05):
            self._last_then = now
            self.then(snapshot)

    def _append(self, snapshot: dict[str, Any], final: bool) -> None:
        line = {"t": round(time.time(), 3), **{k: snapshot.get(k) for k in _KEYS},
                "final": final}
        if isinstance(line["pages_per_s"], float):
            line["pages_per_s"] = round(line["pages_per_s"], 2)
        if isinstance(line["elapsed"], float):
            line["elapsed"] = round(line["elapsed"], 2)
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)  # one write of a whole line: readers never see half of one
            finally:
                os.close(fd)
        except OSError:
            pass  # live stats are a convenience: a full disk must not end the crawl


def read_stats(path: str | Path, max_points: int = 300) -> list[dict[str, Any]]:
    """The snapshots of a stats file, oldest first, thinned evenly to at most
    ``max_points`` (the last one always kept); [] when there is no file yet."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    points = []
    for raw in text.splitlines():
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            points.append(value)
    if len(points) > max_points > 1:
        step = (len(points) - 1) / (max_points - 1)
        points = [points[round(i * step)] for i in range(max_points)]
    return points
