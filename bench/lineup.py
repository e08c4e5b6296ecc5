"""The crawlers of the benchmark, (a) to (e) and (h): what each one is and how it is started.

Every crawler does the same job (follow every same-site link once, extract four fields
from each product page) with the same concurrency, writes its items as JSON lines and a
summary JSON, and runs as a child process of the harness so it can be measured alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SCRAPY_KEY = "c"
THREADS_KEY = "d"
ASYNCIO_KEY = "h"


@dataclass(frozen=True)
class Job:
    """One crawl to run: where it starts, how many workers, where its results go."""

    start_url: str
    workers: int
    out: Path
    summary: Path


@dataclass(frozen=True)
class Crawler:
    """A contestant: its letter, its name, the modules it needs, the command that runs it."""

    key: str
    name: str
    description: str
    needs: tuple[str, ...]
    command: Callable[[Job], list[str]]


def _framework(spider: str, *settings: str, cached: bool = False) -> Callable[[Job], list[str]]:
    def command(job: Job) -> list[str]:
        # cached: one HTTP cache for every round of this crawler (the runs directory is
        # shared by the rounds), so the first round fills it and the others are served
        cache = (["-s", "httpcache.enabled=true", "-s", f"httpcache.dir={job.out.parent}/httpcache"]
                 if cached else [])
        return [
            sys.executable, "-m", "scraper", "run", spider,
            "--config", str(BENCH_DIR / "config.yaml"),
            "-s", f"workers={job.workers}",
            "-s", f"per_host_workers={job.workers}",
            *(arg for s in settings for arg in ("-s", s)),
            *cache,
            "-a", f"base_url={job.start_url}",
            "-O", str(job.out),
            "--summary", str(job.summary),
        ]  # fmt: skip

    return command


def _scrapy(job: Job) -> list[str]:
    return [
        sys.executable, "-m", "bench.crawlers.scrapy_shop",
        "--start", job.start_url, "--workers", str(job.workers),
        "--out", str(job.out), "--summary", str(job.summary),
    ]  # fmt: skip


def _asyncio(job: Job) -> list[str]:
    return [
        sys.executable, "-m", "bench.crawlers.asyncio_shop",
        "--start", job.start_url, "--workers", str(job.workers),
        "--out", str(job.out), "--summary", str(job.summary),
    ]  # fmt: skip


def _threaded(parser: str) -> Callable[[Job], list[str]]:
    def command(job: Job) -> list[str]:
        return [
            sys.executable, "-m", "bench.crawlers.threaded", "--parser", parser,
            "--start", job.start_url, "--workers", str(job.workers),
            "--out", str(job.out), "--summary", str(job.summary),
        ]  # fmt: skip

    return command


CRAWLERS: tuple[Crawler, ...] = (
    Crawler(
        "a", "scraper lxml",
        "our framework: links() + follow_all(), fields with css()/xpath()",
        ("scraper", "lxml", "cssselect"), _framework("bench_lxml"),
    ),
    Crawler(
        "b", "scraper soup",
        "our framework: select('a[href]') + follow_all(), fields with select_one()",
        ("scraper", "bs4"), _framework("bench_soup"),
    ),
    Crawler(
        SCRAPY_KEY, "Scrapy",
        "Scrapy, plain spider yielding every link (dupefilter drops repeats)",
        ("scrapy",), _scrapy,
    ),
    Crawler(
        THREADS_KEY, "threads+lxml",
        "hand-written: queue.Queue + threads + requests.Session each + lxml",
        ("requests", "lxml", "bs4"), _threaded("lxml"),
    ),
    Crawler(
        "e", "threads+bs4",
        "hand-written: queue.Queue + threads + requests.Session each + BeautifulSoup('lxml')",
        ("requests", "lxml", "bs4"), _threaded("bs4"),
    ),
    Crawler(
        ASYNCIO_KEY, "asyncio+lxml",
        "hand-written: one aiohttp.ClientSession + coroutines on an asyncio.Queue + lxml",
        ("aiohttp", "lxml"), _asyncio,
    ),
)  # fmt: skip


#: Run only when named with --only: (a) without robots.txt and retries, to show what
#: they cost (`--only a,f`); (a) served from the HTTP cache, to show what a hit costs
#: against a fetch (`--only a,g --rounds 3`: its first round fills the cache, so its
#: median is a round of hits); (a) and (b) with two worker processes (`--only a,h,i`,
#: `--only b,j`).
EXTRA_CRAWLERS: tuple[Crawler, ...] = (
    Crawler(
        "f", "scraper lxml, no robots/retries",
        "(a) with obey_robots=false and retry.attempts=1",
        ("scraper", "lxml", "cssselect"),
        _framework("bench_lxml", "obey_robots=false", "retry.attempts=1"),
    ),
    Crawler(
        "g", "scraper lxml, from the cache",
        "(a) with httpcache.enabled: the first round fills the cache, the others hit it",
        ("scraper", "lxml", "cssselect"), _framework("bench_lxml", cached=True),
    ),
    Crawler(
        "i", "scraper lxml x2 procs",
        "(a) with processes=2: two worker processes of `workers` threads, one coordinator",
        ("scraper", "lxml", "cssselect"), _framework("bench_lxml", "processes=2"),
    ),
    Crawler(
        "j", "scraper soup x2 procs",
        "(b) with processes=2: two worker processes of `workers` threads, one coordinator",
        ("scraper", "bs4"), _framework("bench_soup", "processes=2"),
    ),
)  # fmt: skip


BASELINE_KEY = "A"


def baseline(tree: Path, label: str) -> Crawler:
    """(a) as another revision of the repository checked out at ``tree`` runs it: its
    own package and its own bench spider, so a change is measured against the code
    before it in the same run (``--baseline REV``)."""

    def command(job: Job) -> list[str]:
        boot = (f"import sys; sys.path.insert(0, {str(tree)!r}); "
                "from scraper.cli import main; sys.exit(main(sys.argv[1:]))")
        return [
            sys.executable, "-c", boot, "run", "bench_lxml",
            "--config", str(tree / "bench" / "config.yaml"),
            "-s", f"workers={job.workers}", "-s", f"per_host_workers={job.workers}",
            "-a", f"base_url={job.start_url}", "-O", str(job.out), "--summary", str(job.summary),
        ]  # fmt: skip

    return Crawler(BASELINE_KEY, f"(a) @{label}", f"(a) as revision {label} runs it",
                   ("scraper", "lxml"), command)


def select(keys: str | None) -> list[Crawler]:
    """The crawlers named by a comma-separated list of letters (the six for None)."""
    if not keys:
        return list(CRAWLERS)
    wanted = [key.strip().lower() for key in keys.split(",") if key.strip()]
    everyone = CRAWLERS + EXTRA_CRAWLERS
    known = {crawler.key: crawler for crawler in everyone}
    unknown = [key for key in wanted if key not in known]
    if unknown:
        raise ValueError(f"unknown crawler {', '.join(unknown)} (known: {', '.join(known)})")
    return [crawler for crawler in everyone if crawler.key in wanted]
