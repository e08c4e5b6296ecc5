"""Fetching: the Fetcher protocol (``base``) and the HTTP fetcher on requests
(``fetcher``, with its ``watchdog``), the one decision after a fetch (``policy``:
deliver, retry, redirect or fail, with ``retry`` and ``redirects``), and the per-host
politeness rules (``politeness``)."""
