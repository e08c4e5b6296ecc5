"""Throughput of the PostgreSQL output alone: N items encoded and written through
``open_output`` (JSONB + typed columns, COPY in batches), plain and with upsert on a key,
and, for comparison, the same items encoded the same way and sent with
executemany(INSERT) (psycopg's pipeline mode) instead of COPY.

    python bench/postgres.py [--items 100000] [--rounds 3] [--commit-every 0] [--url URL]

Without --url a private server is started (initdb in a temporary directory, as
tests/pgserver.py does; fsync on, as a real server). --commit-every N also asks for
the output's position every N items, as a crawl with --job-dir does after each batch
of pages (0: only the output's own batches of 5,000 rows). Each mode runs --rounds times, interleaved; the median and the best
rate are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scraper.outputs import open_output  # noqa: E402
from tests.pgserver import PostgresServer, pg_binaries  # noqa: E402

CPU: dict[str, list[float]] = {}  # items per second of this process's CPU time, by mode
FIELDS = {"title": "text", "price": "numeric", "stock": "integer", "in_stock": "boolean",
          "seen": "timestamptz"}


def item(i: int) -> dict[str, Any]:
    """A typical product item: a few short strings, numbers, a list and a date."""
    return {"url": f"http://shop.example/catalogue/product-{i}/index.html",
            "title": f"A Light in the Attic, volume {i}", "price": f"{i % 100}.{i % 97:02d}",
            "stock": i % 23, "in_stock": i % 5 != 0, "seen": "2025-03-02T10:00:00+00:00",
            "tags": ["poetry", "classics", str(i % 7)], "rating": "Three",
            "description": "It's hard to imagine a world without A Light in the Attic. " * 3}


def through_output(url: str, table: str, n: int, commit_every: int, key: str | None) -> float:
    spec: dict[str, Any] = {"path": f"{url}?table={table}", "fields": FIELDS, "overwrite": True}
    if key:
        spec["key"] = key
    out = open_output(spec, "bench")
    items = [item(i) for i in range(n)]
    start, cpu = time.perf_counter(), time.process_time()
    for i, it in enumerate(items, 1):
        out.write(it)
        if commit_every and i % commit_every == 0:
            out.position()
    out.position()
    elapsed = time.perf_counter() - start
    CPU.setdefault("upsert" if key else "copy", []).append(n / (time.process_time() - cpu))
    out.close()
    return n / elapsed


def executemany(url: str, n: int) -> float:
    """The same rows through executemany(INSERT ...): what COPY was measured against."""
    import psycopg

    from scraper.outputs.postgresql import target

    t = target(f"{url}?table=bench_many", "bench", {"fields": FIELDS})
    out = open_output({"path": f"{url}?table=bench_many", "fields": FIELDS, "overwrite": True},
                      "bench")
    out.close()
    items = [item(i) for i in range(n)]
    cols = ", ".join(["item", *FIELDS])
    marks = ", ".join(["%s"] * (1 + len(FIELDS)))
    with psycopg.connect(t.conninfo) as db, db.cursor() as cur:
        start = time.perf_counter()
        for lo in range(0, n, 5000):  # encoded as the output does, then sent
            rows = [out.encode(it) for it in items[lo:lo + 5000]]  # type: ignore[attr-defined]
            cur.executemany(f"INSERT INTO bench_many ({cols}) VALUES ({marks})", rows)
            db.commit()
        return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--commit-every", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--url", help="a PostgreSQL database to write to (default: a private server)")
    args = ap.parse_args()
    server = None
    url = args.url
    if url is None:
        bindir = pg_binaries()
        if bindir is None:
            sys.exit("PostgreSQL is not installed (/usr/lib/postgresql/*/bin) and no --url given")
        server = PostgresServer(bindir, durable=True)
        url = server.url
    try:
        runs: dict[str, list[float]] = {"copy": [], "upsert": [], "executemany": []}
        for _ in range(args.rounds):  # interleaved: a busy machine slows each mode alike
            runs["copy"].append(through_output(url, "bench_copy", args.items,
                                               args.commit_every, None))
            runs["upsert"].append(through_output(url, "bench_upsert", args.items,
                                                 args.commit_every, "url"))
            runs["executemany"].append(executemany(url, args.items))
    finally:
        if server is not None:
            server.stop()
    results: dict[str, Any] = {"items": args.items, "commit_every": args.commit_every,
                               "rounds": args.rounds}
    for mode, rates in runs.items():
        results[f"{mode}_items_per_s"] = {"median": round(statistics.median(rates)),
                                          "best": round(max(rates))}
    # what the crawler's own process spends (the server's work is in its processes)
    for mode, rates in CPU.items():
        results[f"{mode}_items_per_client_cpu_s"] = round(statistics.median(rates))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
