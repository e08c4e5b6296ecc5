"""Benchmarks. The engine benchmark, `python bench/run.py`: a generated shop served on
loopback, crawled by our framework, by Scrapy and by hand-written threaded crawlers in
one run (see bench/README.md). Its modules:

- `site`     generates the shop (HTML files, robots.txt) and knows the expected items
- `serve`    serves it on 127.0.0.1 with nginx, or a threaded Python server
- `measure`  runs one crawler as a child process: wall time, CPU seconds, peak RSS
- `lineup`   the six crawlers (a)-(e), (h) and how each is started
- `verify`   checks a crawl's pages, items and errors against the site
- `report`   medians, ratios and the result table (text, markdown, JSON)
- `run`      the command line tying them together
- `crawlers/` the Scrapy spider and the hand-written baselines
- `spiders/`  the spiders written with our framework

`jobdir.py` (memory of a persistent job) and `cluster.py` (scaling over processes with
the Redis backend) are benchmarks of their own, each a script.
"""
