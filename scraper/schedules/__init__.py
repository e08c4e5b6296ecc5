"""Recurring crawls: schedule entries and their fire times (``entries``), the process
that runs them as child processes (``supervisor``), their history (``history``) and
Prometheus metrics (``metrics``). Nothing here builds a crawl: checking a run's
settings is injected (``CrawlCheck``), and a run is a ``python -m scraper run`` child.
"""
