"""The crawlers we compare against, each a program of its own run as a child process:
`scrapy_shop` (Scrapy) and `threaded` (hand-written, lxml or BeautifulSoup).

Each writes its items as JSON lines and a summary JSON with `pages`, `items`,
`errors` (kind -> count) and `duration_s`, the keys our framework's `--summary` has.
"""
