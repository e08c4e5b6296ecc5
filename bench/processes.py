"""Benchmark of worker processes: the lxml (or soup) spider with `--processes 1` and
`--processes N` on the generated shop, rounds alternating, in the same run.

For each crawl: pages/s (pages over the command's wall time, start-up included), CPU
seconds of the whole process tree, the coordinator's own CPU seconds per page (from
the summary's `processes.coordinator_cpu_s`; with one process, the coordinator is the
whole crawl) and the peak RSS of each worker process (from the summary).

    python bench/processes.py --products 2000 --rounds 3
    python bench/processes.py --spider bench_soup --processes 2 --threads 16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import serve  # noqa: E402
from bench.measure import run_measured  # noqa: E402
from bench.site import generate  # noqa: E402

BENCH = Path(__file__).resolve().parent


def crawl(site_url: str, spider: str, processes: int, threads: int, work: Path,
          n: int) -> dict[str, float]:
    summary = work / f"summary-{processes}-{n}.json"
    argv = [sys.executable, "-m", "scraper", "run", spider, "--config", str(BENCH / "config.yaml"),
            "-a", f"base_url={site_url}/", "-O", str(work / f"items-{processes}.jsonl"),
            "-s", f"workers={threads}", "-s", "per_host_workers=64",
            "--processes", str(processes), "--summary", str(summary)]
    env = {**os.environ, "PYTHONPATH": str(BENCH.parent)}
    usage = run_measured(argv, cwd=work, log_path=work / f"log-{processes}-{n}.txt",
                         timeout_s=1800, env=env)
    if usage.exit_code != 0:
        raise SystemExit(f"crawl failed (exit {usage.exit_code}); see {work}")
    s = json.loads(summary.read_text())
    procs = s.get("processes")
    coordinator = procs["coordinator_cpu_s"] if procs else usage.cpu_s
    rss = [w["peak_rss_mb"] for w in procs["workers"]] if procs else [usage.peak_rss_mib]
    return {"pages": s["pages"], "errors": sum(s["errors"].values()),
            "pages_per_s": s["pages"] / usage.wall_s, "cpu_s": usage.cpu_s,
            "cpu_ms_per_page": 1000 * usage.cpu_s / s["pages"],
            "coordinator_ms_per_page": 1000 * coordinator / s["pages"],
            "worker_peak_rss_mb": max(rss), "coordinator_peak_rss_mb": usage.peak_rss_mib}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--products", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--spider", default="bench_lxml")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=32,
                   help="threads in total: each process gets threads / processes")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-processes-"))
    port = serve.free_port()
    site = generate(work / "site", f"http://127.0.0.1:{port}", products=args.products)
    results: dict[int, list[dict[str, float]]] = {1: [], args.processes: []}
    with serve.start(site.root, port) as server:
        for n in range(args.rounds):
            for procs in results:
                r = crawl(server.origin, args.spider, procs, max(1, args.threads // procs), work, n)
                if r["pages"] != site.pages or r["errors"]:
                    raise SystemExit(f"round {n}, {procs} process(es): {r}")
                results[procs].append(r)
                print(f"round {n} processes={procs}: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in r.items()), flush=True)
    med = {procs: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
           for procs, rs in results.items()}
    one, many = med[1], med[args.processes]
    print(f"\n{args.spider}, {site.pages} pages, {args.threads} threads in total, "
          f"median of {args.rounds}:")
    print("| processes | pages/s | CPU ms/page | coordinator CPU ms/page | peak RSS MiB per "
          "worker process |")
    print("|---|---|---|---|---|")
    for procs, m in med.items():
        print(f"| {procs} | {m['pages_per_s']:.0f} | {m['cpu_ms_per_page']:.2f} | "
              f"{m['coordinator_ms_per_page']:.2f} | {m['worker_peak_rss_mb']:.0f} |")
    print(f"\nprocesses={args.processes} / processes=1: "
          f"{many['pages_per_s'] / one['pages_per_s']:.2f}x pages/s")


if __name__ == "__main__":
    main()
