"""The engine benchmark's command line: generate the shop, serve it, crawl it with every
crawler in alternating rounds, verify and measure each crawl, print and save the table.

    python bench/run.py [--products 5000] [--rounds 3] [--budget-min 8] [--only a,b,c,d,e,h]
                        [--server auto|nginx|python] [--workers 32] [--json PATH]

Rounds alternate (a b c d e, a b c d e, ...) so that the machine's noise spreads over
every crawler alike. After each round the harness predicts the next from the ones so
far and stops early if it would end past the time budget, so the default run stays
within about eight minutes however fast the machine is (`--budget-min 0`: no budget).

Exit status: 0 when every crawl finished with the right pages and items and no error,
1 otherwise (or, with --strict, also when a target is missed), 2 for bad arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/run.py`: import `bench` from the repository
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import datetime  # noqa: E402
import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

from bench import report, serve  # noqa: E402
import subprocess  # noqa: E402

from bench.lineup import ASYNCIO_KEY, BASELINE_KEY, BENCH_DIR, REPO_ROOT, Crawler, Job, baseline, select  # noqa: E402
from bench.measure import run_measured  # noqa: E402
from bench.site import Site, generate  # noqa: E402
from bench.verify import verify  # noqa: E402

_VERSIONED = ("scraper", "scrapy", "twisted", "requests", "urllib3", "lxml", "beautifulsoup4")
_LOG_TAIL_LINES = 15


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Crawl a generated local shop with our framework, Scrapy and hand-written "
        "crawlers, in alternating rounds; report pages/s, CPU seconds, peak RSS and ratios.",
    )
    parser.add_argument(
        "--products",
        "--pages",
        type=int,
        default=5_000,
        metavar="N",
        help="product pages to generate (the site has ~4%% more pages: listings, "
        "home, info pages); default 5000",
    )
    parser.add_argument("--rounds", type=int, default=3, help="most rounds to run (default 3)")
    parser.add_argument(
        "--budget-min",
        type=float,
        default=8.0,
        metavar="MIN",
        help="start no round predicted to end past MIN minutes; the first round "
        "always runs (default 8; 0 for no budget)",
    )
    parser.add_argument("--only", metavar="KEYS", help="crawlers to run, e.g. a,c,d (default all)")
    parser.add_argument(
        "--server",
        choices=serve.SERVER_KINDS,
        default="auto",
        help="nginx, the Python fallback, or auto: nginx when installed",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=32,
        help="concurrency of every crawler, per host too (default 32)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the site generator")
    parser.add_argument(
        "--timeout-min",
        type=float,
        default=15.0,
        metavar="MIN",
        help="kill a crawl running longer than this (default 15)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=BENCH_DIR / "results" / "engine.json",
        help="where to write the results as JSON; markdown goes beside it (.md)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (site, items, logs) and print its path",
    )
    parser.add_argument("--strict", action="store_true", help="also exit 1 when a target is missed")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run (a) as git revision REV runs it (checked out in a temporary worktree), "
        "as crawler (A), and print (a)/(A): a change measured against the code before it",
    )
    args = parser.parse_args(argv)
    try:
        args.crawlers = select(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    if args.rounds < 1 or args.workers < 1 or args.products < 24:
        parser.error("--rounds and --workers must be >= 1, --products >= 24")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = _missing_modules(args.crawlers)
    if missing:
        print(
            f"bench: cannot run: {missing}; install with: pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 1
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="scraper-bench-"))
    tree = workdir / "baseline"
    try:
        if args.baseline:
            _checkout(args.baseline, tree)
            args.crawlers.append(baseline(tree, args.baseline))
        rows = _benchmark(args, workdir, began)
    except (serve.ServerError, subprocess.CalledProcessError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.baseline:
            subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = not all(row.ok for row in rows)
    by_key = {row.crawler.key: row for row in rows}
    missed = any(target.check(by_key)[1] is False for target in report.TARGETS)
    return 1 if failed or (args.strict and missed) else 0


def _checkout(rev: str, tree: Path) -> None:
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(tree), rev],
                   check=True, capture_output=True)


def _baseline_ratio(rows: list[report.Row]) -> None:
    by_key = {row.crawler.key: row for row in rows}
    now, before = by_key.get("a"), by_key.get(BASELINE_KEY)
    if now is None or before is None or not before.pages_per_s:
        return
    print(f"\n(a) / (A): pages/s {now.pages_per_s / before.pages_per_s:.3f}, "
          f"CPU s {now.cpu_s / before.cpu_s:.3f} (medians of the same rounds)")


def _asyncio_ratios(rows: list[report.Row]) -> None:
    """Each framework crawler's pages/s and CPU against the asyncio crawler (h)'s."""
    by_key = {row.crawler.key: row for row in rows}
    asyncio_row = by_key.get(ASYNCIO_KEY)
    if asyncio_row is None or not asyncio_row.pages_per_s or not asyncio_row.cpu_s:
        return
    for key in ("a", "b", "i", "j", BASELINE_KEY):
        row = by_key.get(key)
        if row is not None:
            print(f"({key}) / ({ASYNCIO_KEY}): pages/s {row.pages_per_s / asyncio_row.pages_per_s:.3f}, "
                  f"CPU s {row.cpu_s / asyncio_row.cpu_s:.3f} (medians of the same rounds)")


def _benchmark(args: argparse.Namespace, workdir: Path, began: float) -> list[report.Row]:
    """Generate, serve, crawl in rounds; print and save the table; return its rows."""
    port = serve.free_port()
    print(f"generating {args.products} products under {workdir} ...", flush=True)
    site = generate(workdir / "site", f"http://{serve.HOST}:{port}", args.products, args.seed)
    print(
        f"site: {site.pages} pages, {len(site.products)} products, "
        f"{site.total_bytes / 2**20:.0f} MiB",
        flush=True,
    )
    if args.server == "auto" and serve.nginx_path() is None:
        print(
            "nginx is not installed: falling back to the Python server, which is slower "
            "and shares the CPU with the crawler (apt-get install nginx)",
            flush=True,
        )
    with serve.start(site.root, port, args.server) as server:
        print(f"server: {server.describe()}", flush=True)
        runs = _run_rounds(args, site, workdir, began)
    rows = report.summarise(runs)
    context = _context(args, site, server, rounds=max(run.round for run in runs))
    print(
        f"\n{site.pages} pages served by {server.version}, {args.workers} workers "
        f"(per host too), {context['rounds']} round(s)\n"
    )
    print(report.text_table(rows))
    _baseline_ratio(rows)
    _asyncio_ratios(rows)
    _save(args.json, rows, context)
    return rows


def _run_rounds(
    args: argparse.Namespace, site: Site, workdir: Path, began: float
) -> list[report.Run]:
    runs: list[report.Run] = []
    budget_s = args.budget_min * 60
    for round_number in range(1, args.rounds + 1):
        if round_number > 1 and budget_s > 0:
            predicted = _predicted_round_s(runs)
            if time.monotonic() - began + predicted > budget_s:
                print(
                    f"stopping after {round_number - 1} round(s): another (~{predicted:.0f} s) "
                    f"would end past the {args.budget_min:g}-minute budget "
                    "(--budget-min 0 lifts it)",
                    flush=True,
                )
                break
        for crawler in args.crawlers:
            run = _crawl(crawler, round_number, args, site, workdir)
            runs.append(run)
            _print_run(run, args.rounds)
    return runs


def _predicted_round_s(runs: list[report.Run]) -> float:
    """The next round's duration: each crawler's slowest round so far, summed."""
    slowest: dict[str, float] = {}
    for run in runs:
        slowest[run.crawler.key] = max(slowest.get(run.crawler.key, 0.0), run.usage.wall_s)
    return sum(slowest.values())


def _crawl(
    crawler: Crawler, round_number: int, args: argparse.Namespace, site: Site, workdir: Path
) -> report.Run:
    stem = workdir / "runs" / f"{crawler.key}-round{round_number}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    job = Job(
        start_url=site.start_url,
        workers=args.workers,
        out=stem.with_suffix(".jsonl"),
        summary=stem.with_suffix(".summary.json"),
    )
    for stale in (job.out, job.summary):
        stale.unlink(missing_ok=True)
    log = stem.with_suffix(".log")
    usage = run_measured(
        crawler.command(job), cwd=REPO_ROOT, log_path=log, timeout_s=args.timeout_min * 60
    )
    run = report.Run(crawler, round_number, usage, verify(site, job.summary, job.out))
    if not run.ok:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        print("\n".join(f"    | {line}" for line in tail), flush=True)
    return run


def _print_run(run: report.Run, rounds: int) -> None:
    usage = run.usage
    status = "ok" if run.ok else "FAILED: " + "; ".join(run.problems())
    print(
        f"round {run.round}/{rounds}  ({run.crawler.key}) {run.crawler.name:<13} "
        f"{run.verdict.pages:>6} pages {run.verdict.items:>6} items  {usage.wall_s:6.1f} s "
        f"{run.pages_per_s:7.1f} pages/s  CPU {usage.cpu_s:6.1f} s  "
        f"RSS {usage.peak_rss_mib:5.0f} MiB  {status}",
        flush=True,
    )


def _missing_modules(crawlers: Sequence[Crawler]) -> str:
    missing = sorted({m for c in crawlers for m in c.needs if importlib.util.find_spec(m) is None})
    return ", ".join(f"no module {m!r}" for m in missing)


def _context(
    args: argparse.Namespace, site: Site, server: serve.Server, rounds: int
) -> dict[str, Any]:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "benchmark": "engine",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/run.py", *sys.argv[1:]]),
        "server": server.version,
        "site": {
            "pages": site.pages,
            "products": len(site.products),
            "listing_pages": site.listing_pages,
            "mib": round(site.total_bytes / 2**20, 1),
            "seed": args.seed,
        },
        "settings": {"workers": args.workers, "per_host_workers": args.workers},
        "rounds": rounds,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
        },
        "versions": versions,
    }


def _save(json_path: Path, rows: list[report.Row], context: dict[str, Any]) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(
        json.dumps(report.to_json(rows, context), indent=2) + "\n", encoding="utf-8"
    )
    markdown_path = json_path.with_suffix(".md")
    markdown_path.write_text(report.markdown(rows, context), encoding="utf-8")
    print(f"\nwrote {_shown(json_path)} and {_shown(markdown_path)}")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
