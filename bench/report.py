"""From measured runs to results: medians per crawler, ratios to Scrapy (c) and to the
hand-written threads+lxml crawler (d), the targets the framework is held to, and the
table as text, markdown and JSON.

Pages/s is the median over rounds (a crawler's pages divided by its process's wall
time); CPU seconds is the median too; peak RSS is the largest of the rounds. Ratios
are the headline: they compare crawlers measured side by side, on the same machine, in
the same minutes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.lineup import SCRAPY_KEY, THREADS_KEY, Crawler
from bench.measure import Usage
from bench.verify import Verdict


@dataclass(frozen=True)
class Run:
    """One crawl of one round."""

    crawler: Crawler
    round: int
    usage: Usage
    verdict: Verdict

    @property
    def ok(self) -> bool:
        return self.usage.exit_code == 0 and not self.usage.timed_out and self.verdict.ok

    @property
    def pages_per_s(self) -> float:
        return self.verdict.pages / self.usage.wall_s if self.usage.wall_s > 0 else 0.0

    def problems(self) -> list[str]:
        problems = list(self.verdict.problems)
        if self.usage.timed_out:
            problems.insert(0, "killed: took too long")
        elif self.usage.exit_code != 0:
            problems.insert(0, f"exit status {self.usage.exit_code}")
        return problems

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "pages": self.verdict.pages,
            "items": self.verdict.items,
            "wall_s": round(self.usage.wall_s, 3),
            "pages_per_s": round(self.pages_per_s, 1),
            "user_s": round(self.usage.user_s, 2),
            "sys_s": round(self.usage.sys_s, 2),
            "cpu_s": round(self.usage.cpu_s, 2),
            "peak_rss_mib": round(self.usage.peak_rss_mib, 1),
            "exit_code": self.usage.exit_code,
            "errors": self.verdict.errors,
            "ok": self.ok,
            "problems": self.problems(),
        }


@dataclass(frozen=True)
class Row:
    """One crawler over all its rounds."""

    crawler: Crawler
    runs: tuple[Run, ...]
    pages: int
    items: int
    pages_per_s: float
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    vs_scrapy: float | None
    vs_threads: float | None

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)

    @property
    def label(self) -> str:
        return f"({self.crawler.key}) {self.crawler.name}"


@dataclass(frozen=True)
class Target:
    """A bound the framework must meet, on a value computed from the rows."""

    label: str
    measure: Callable[[dict[str, Row]], float | None]
    limit: float
    at_least: bool
    unit: str

    def check(self, rows: dict[str, Row]) -> tuple[float | None, bool | None]:
        """(measured value, met?); (None, None) when a crawler it needs did not run."""
        value = self.measure(rows)
        if value is None:
            return None, None
        return value, value >= self.limit if self.at_least else value <= self.limit


def _speed_ratio(key: str, other: str) -> Callable[[dict[str, Row]], float | None]:
    def measure(rows: dict[str, Row]) -> float | None:
        if key in rows and other in rows and rows[other].pages_per_s > 0:
            return rows[key].pages_per_s / rows[other].pages_per_s
        return None

    return measure


def _peak_rss(key: str) -> Callable[[dict[str, Row]], float | None]:
    def measure(rows: dict[str, Row]) -> float | None:
        return rows[key].peak_rss_mib if key in rows else None

    return measure


TARGETS: tuple[Target, ...] = (
    Target("(a) pages/s vs (d) threads+lxml", _speed_ratio("a", THREADS_KEY), 0.9, True, "x"),
    Target("(a) pages/s vs (c) Scrapy", _speed_ratio("a", SCRAPY_KEY), 3.5, True, "x"),
    Target("(b) pages/s vs (c) Scrapy", _speed_ratio("b", SCRAPY_KEY), 1.0, True, "x"),
    Target("(a) peak RSS", _peak_rss("a"), 150, False, " MiB"),
    Target("(b) peak RSS", _peak_rss("b"), 150, False, " MiB"),
)


def summarise(runs: Sequence[Run]) -> list[Row]:
    """One row per crawler, in lineup order, with medians and ratios."""
    by_crawler: dict[str, list[Run]] = {}
    for run in runs:
        by_crawler.setdefault(run.crawler.key, []).append(run)
    speeds = {
        key: statistics.median(run.pages_per_s for run in _measured(crawler_runs))
        for key, crawler_runs in by_crawler.items()
    }
    rows = []
    for key, crawler_runs in sorted(by_crawler.items()):
        measured = _measured(crawler_runs)
        rows.append(
            Row(
                crawler=crawler_runs[0].crawler,
                runs=tuple(crawler_runs),
                pages=crawler_runs[-1].verdict.pages,
                items=crawler_runs[-1].verdict.items,
                pages_per_s=speeds[key],
                wall_s=statistics.median(run.usage.wall_s for run in measured),
                cpu_s=statistics.median(run.usage.cpu_s for run in measured),
                peak_rss_mib=max(run.usage.peak_rss_mib for run in crawler_runs),
                vs_scrapy=_ratio(speeds[key], speeds.get(SCRAPY_KEY)),
                vs_threads=_ratio(speeds[key], speeds.get(THREADS_KEY)),
            )
        )
    return rows


def _measured(runs: Sequence[Run]) -> list[Run]:
    """The runs whose numbers count: the successful ones, or all if none succeeded."""
    return [run for run in runs if run.ok] or list(runs)


def _ratio(speed: float, reference: float | None) -> float | None:
    return speed / reference if reference else None


def _times(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


_COLUMNS = ("crawler", "pages", "items", "pages/s", "wall s", "CPU s", "peak RSS MiB",
            "vs Scrapy", "vs (d)", "check")  # fmt: skip


def _cells(row: Row) -> list[str]:
    return [
        row.label,
        str(row.pages),
        str(row.items),
        f"{row.pages_per_s:.1f}",
        f"{row.wall_s:.1f}",
        f"{row.cpu_s:.1f}",
        f"{row.peak_rss_mib:.0f}",
        _times(row.vs_scrapy),
        _times(row.vs_threads),
        "ok" if row.ok else "FAILED",
    ]


def _target_cells(rows: dict[str, Row]) -> list[list[str]]:
    table = []
    for target in TARGETS:
        value, met = target.check(rows)
        bound = f"{'>=' if target.at_least else '<='} {target.limit:g}{target.unit}"
        precision = 2 if target.unit == "x" else 0
        shown = "not run" if value is None else f"{value:.{precision}f}{target.unit}"
        verdict = "" if met is None else ("met" if met else "MISSED")
        table.append([target.label, bound, shown, verdict])
    return table


def text_table(rows: Sequence[Row]) -> str:
    """The result table and the targets, aligned for a terminal."""
    lines = _align([list(_COLUMNS)] + [_cells(row) for row in rows], numeric_from=1)
    targets = _target_cells({row.crawler.key: row for row in rows})
    lines += ["", "targets:"] + _align(
        [["target", "bound", "measured", ""]] + targets, numeric_from=2
    )
    for row in rows:
        for run in row.runs:
            for problem in run.problems():
                lines.append(f"{row.label} round {run.round}: {problem}")
    return "\n".join(lines)


def _align(table: list[list[str]], numeric_from: int) -> list[str]:
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i < numeric_from or i == len(line) - 1 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]


def markdown(rows: Sequence[Row], context: dict[str, Any]) -> str:
    """The result table, the targets and how they were measured, as markdown."""
    site = context["site"]
    lines = [
        "# Engine benchmark",
        "",
        f"{context['date']}, `{context['command']}`",
        "",
        f"Site: {site['pages']} pages ({site['products']} products, "
        f"{site['mib']:.0f} MiB) served by {context['server']}; "
        f"{context['settings']['workers']} workers, per-host limit "
        f"{context['settings']['per_host_workers']}; {context['rounds']} round(s), "
        "pages/s and CPU s are medians, peak RSS the largest.",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|---|" + "---:|" * (len(_COLUMNS) - 2) + "---|",
    ]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    lines += ["", "| target | bound | measured | |", "|---|---|---:|---|"]
    lines += [
        "| " + " | ".join(cells) + " |" for cells in _target_cells({r.crawler.key: r for r in rows})
    ]
    lines += [
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in context["machine"].items()),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in context["versions"].items()),
    ]
    return "\n".join(lines) + "\n"


def to_json(rows: Sequence[Row], context: dict[str, Any]) -> dict[str, Any]:
    """Everything measured, with the context needed to read it later."""
    by_key = {row.crawler.key: row for row in rows}
    targets = []
    for target in TARGETS:
        value, met = target.check(by_key)
        targets.append(
            {
                "target": target.label,
                "bound": f"{'>=' if target.at_least else '<='} {target.limit:g}{target.unit}",
                "value": None if value is None else round(value, 3),
                "met": met,
            }
        )
    return {
        **context,
        "ok": all(row.ok for row in rows),
        "crawlers": [
            {
                "key": row.crawler.key,
                "name": row.crawler.name,
                "description": row.crawler.description,
                "pages": row.pages,
                "items": row.items,
                "pages_per_s": round(row.pages_per_s, 1),
                "wall_s": round(row.wall_s, 2),
                "cpu_s": round(row.cpu_s, 2),
                "peak_rss_mib": round(row.peak_rss_mib, 1),
                "vs_scrapy": None if row.vs_scrapy is None else round(row.vs_scrapy, 3),
                "vs_threads_lxml": None if row.vs_threads is None else round(row.vs_threads, 3),
                "ok": row.ok,
                "runs": [run.to_json() for run in row.runs],
            }
            for row in rows
        ],
        "targets": targets,
    }
