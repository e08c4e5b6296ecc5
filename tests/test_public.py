"""The public names: what API.md promises users can import, and nothing private leaking."""

import scraper


def test_every_public_name_is_importable_and_listed():
    for name in ("Spider", "Request", "Response", "DropItem", "CloseSpider", "ScraperError",
                 "ConfigError", "SpiderNotFound", "FetchError", "StorageError", "Failure",
                 "SitemapSpider", "CrawlSpider", "Rule", "LinkExtractor", "Link", "IgnoreRequest"):
        assert name in scraper.__all__, name
        assert getattr(scraper, name) is not None
    assert set(scraper.__all__) == {n for n in scraper.__all__ if not n.startswith("_")} | {
        "__version__"}


def test_exceptions_share_one_root():
    for name in ("ConfigError", "SpiderNotFound", "FetchError", "StorageError"):
        assert issubclass(getattr(scraper, name), scraper.ScraperError)
    # control flow, not errors
    assert not issubclass(scraper.DropItem, scraper.ScraperError)
    assert not issubclass(scraper.CloseSpider, scraper.ScraperError)


def test_python_dash_m_scraper_has_a_version():
    assert scraper.__version__.count(".") == 2
