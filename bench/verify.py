"""Checking one crawl against the site: pages fetched, items written, every item's fields, errors.

A crawler is only worth timing if it did the whole job: every page once, one item per
product with the right values (encodings, entities and whitespace handled), no errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.site import Site

_SHOWN_PER_KIND = 3


@dataclass(frozen=True)
class Verdict:
    """What a crawl produced and what was wrong with it (nothing, when `ok`)."""

    pages: int
    items: int
    errors: dict[str, int]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(site: Site, summary_path: Path, items_path: Path) -> Verdict:
    """Compare a crawler's summary and items file with what the site holds."""
    problems: list[str] = []
    summary = _read_summary(summary_path, problems)
    pages = int(summary.get("pages", 0))
    errors = {str(kind): int(count) for kind, count in dict(summary.get("errors") or {}).items()}
    if summary and pages != site.pages:
        problems.append(f"fetched {pages} pages, the site has {site.pages}")
    if any(errors.values()):
        problems.append("errors: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())))
    items = _check_items(site, items_path, problems)
    if summary and "items" in summary and int(summary["items"]) != items:
        problems.append(f"summary says {summary['items']} items, {items_path.name} has {items}")
    return Verdict(pages=pages, items=items, errors=errors, problems=tuple(problems))


def _read_summary(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"no summary written ({path.name})")
        return {}
    except (OSError, ValueError) as exc:
        problems.append(f"unreadable summary {path.name}: {exc}")
        return {}
    if not isinstance(summary, dict):
        problems.append(f"summary {path.name} is not a JSON object")
        return {}
    return summary


def _check_items(site: Site, path: Path, problems: list[str]) -> int:
    expected = site.expected_items()
    found: set[str] = set()
    wrong: list[str] = []
    unknown: list[str] = []
    twice: list[str] = []
    count = 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        problems.append(f"no items file ({path.name})")
        return 0
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
        except ValueError:
            problems.append(f"{path.name}:{number} is not JSON")
            continue
        count += 1
        item_path = urlsplit(str(item.get("url", ""))).path
        truth = expected.get(item_path)
        if truth is None:
            unknown.append(item_path or repr(item)[:80])
        elif item_path in found:
            twice.append(item_path)
        else:
            found.add(item_path)
            diff = [
                f"{k}={item.get(k)!r} (want {v!r})" for k, v in truth.items() if item.get(k) != v
            ]
            if diff:
                wrong.append(f"{item_path}: " + ", ".join(diff))
    _report(problems, "items for no product page", unknown)
    _report(problems, "items written twice", twice)
    _report(problems, "items with wrong fields", wrong)
    missing = len(expected) - len(found)
    if missing:
        problems.append(f"{missing} of {len(expected)} product pages yielded no item")
    return count


def _report(problems: list[str], what: str, cases: list[str]) -> None:
    if cases:
        shown = "; ".join(cases[:_SHOWN_PER_KIND])
        more = f" (and {len(cases) - _SHOWN_PER_KIND} more)" if len(cases) > _SHOWN_PER_KIND else ""
        problems.append(f"{len(cases)} {what}: {shown}{more}")
