"""The dashboard's chart of a run: pages per second and errors over time, as a small
inline SVG built on the server (no chart library, no script): two polylines over the
run's live stats (``crawl.statsfile``), each scaled to its own maximum, with the
time span and the maxima written on the axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

__all__ = ["chart_svg", "rates"]

_W, _H = 720, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 46, 14, 26


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _nice(top: float) -> float:
    """An axis maximum at or above ``top``: 1, 2, 5 times a power of ten."""
    if top <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= top:
        scale *= 10
    while scale > top:
        scale /= 10
    for m in (1, 2, 5, 10):
        if m * scale >= top:
            return m * scale
    return 10 * scale


def _points(xs: Sequence[float], ys: Sequence[float], x_max: float, y_max: float) -> str:
    w, h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    return " ".join(f"{_LEFT + x / x_max * w:.1f},{_TOP + h - y / y_max * h:.1f}"
                    for x, y in zip(xs, ys))


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def rates(series: Sequence[Mapping[str, Any]]) -> list[float]:
    """Pages per second between each snapshot and the one before (the first: the
    crawl's average so far), so the line shows the rate then, not the mean since start."""
    out: list[float] = []
    for i, p in enumerate(series):
        if i == 0:
            out.append(_number(p.get("pages_per_s")))
            continue
        dt = _number(p.get("elapsed")) - _number(series[i - 1].get("elapsed"))
        dp = _number(p.get("pages")) - _number(series[i - 1].get("pages"))
        out.append(max(dp, 0.0) / dt if dt > 0 else out[-1])
    return out


def chart_svg(series: Sequence[Mapping[str, Any]]) -> Markup:
    """The chart of ``series`` (snapshots with ``elapsed``, ``pages``, ``errors``)."""
    if series and _number(series[0].get("elapsed")) > 0:  # the lines start at the start
        series = [{"elapsed": 0.0, "pages": 0, "errors": 0, "pages_per_s": 0.0}, *series]
    xs = [_number(p.get("elapsed")) for p in series]
    rate = rates(series)
    errors = [_number(p.get("errors")) for p in series]
    x_max = max(xs[-1] if xs else 0.0, 1.0)
    r_max, e_max = _nice(max(rate, default=0.0)), _nice(max(errors, default=0.0))
    bottom, right = _H - _BOTTOM, _W - _RIGHT
    parts = [f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
             f'aria-label="pages per second and errors over time" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):  # grid
        y = _TOP + i * (bottom - _TOP) / 4
        parts.append(f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
    parts.append(f'<text class="axis rate" x="{_LEFT - 6}" y="{_TOP + 4}" '
                 f'text-anchor="end">{r_max:g}</text>')
    parts.append(f'<text class="axis rate" x="{_LEFT - 6}" y="{bottom}" text-anchor="end">0</text>')
    parts.append(f'<text class="axis errors" x="{right + 6}" y="{_TOP + 4}">{e_max:g}</text>')
    parts.append(f'<text class="axis errors" x="{right + 6}" y="{bottom}">0</text>')
    parts.append(f'<text class="axis" x="{_LEFT}" y="{_H - 6}">0 s</text>')
    parts.append(f'<text class="axis" x="{right}" y="{_H - 6}" text-anchor="end">'
                 f'{_span(x_max)}</text>')
    parts.append(f'<text class="legend rate" x="{_LEFT + 90}" y="{_H - 6}">— pages/s</text>')
    parts.append(f'<text class="legend errors" x="{_LEFT + 190}" y="{_H - 6}">— errors</text>')
    if len(series) >= 2:
        parts.append(f'<polyline class="line errors" points="{_points(xs, errors, x_max, e_max)}"/>')
        parts.append(f'<polyline class="line rate" points="{_points(xs, rate, x_max, r_max)}"/>')
    else:
        parts.append(f'<text class="axis" x="{_W / 2}" y="{_H / 2}" text-anchor="middle">'
                     "waiting for the first figures…</text>")
    parts.append("</svg>")
    return Markup("".join(parts))  # numbers and fixed text only: nothing to escape
