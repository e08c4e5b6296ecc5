"""``serve``'s dashboard in a real browser: Playwright driving Debian's Chromium against a
real ``serve`` process crawling the bundled demo book shop. Run now, watch the job's
counters move without a reload, open the job (chart, log, items), cancel it, find it
in the history. ``SCRAPER_SCREENSHOTS=1`` also saves docs/dashboard.png and
docs/dashboard-job.png (the README's pictures)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scraper.demosite import DemoSite
from tests.conftest import ROOT, write_project
from tests.test_server import Serve

pytestmark = pytest.mark.timeout(120)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (CI must install chromium: see .ci/run)")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shop() -> Iterator[DemoSite]:
    with DemoSite() as site:
        yield site


def _pages(text: str) -> int:
    return int(text.replace(",", "").strip() or 0)


def test_run_now_watch_cancel_and_find_it_in_the_history(tmp_path: Path, shop: DemoSite,
                                                         browser: Any) -> None:
    books = (ROOT / "spiders" / "books.py").read_text()
    config = f"""
spiders_path: spiders
obey_robots: false
workers: 4
schedules:
  - spider: books
    cron: "0 */6 * * *"
    args: {{base_url: "{shop.url}"}}
    settings: {{delay: 0.05}}
  - spider: books
    name: books-sample
    every: 1d
    args: {{base_url: "{shop.url}"}}
    settings: {{max_pages: 60}}
"""
    from playwright.sync_api import expect

    project = write_project(tmp_path / "bookshop", {"books": books}, config)
    server = Serve(project)
    shots = ROOT / "docs" if os.environ.get("SCRAPER_SCREENSHOTS") else tmp_path
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(server.url + "/")
        # the `every` schedule ran at start: its run shows up as finished, without a reload
        finished = page.locator("#finished tr[data-job]")
        finished.first.wait_for(timeout=45_000)
        assert "ok" in finished.first.inner_text()

        page.locator('tr[data-schedule="books"] button', has_text="Run now").click()
        expect(page.locator("#flash")).to_contain_text("run started", timeout=15_000)
        row = page.locator("#running tr[data-job]").first
        row.wait_for(timeout=30_000)
        job = row.get_attribute("data-job")
        pages = row.locator("td.pages")
        page.wait_for_function("() => { const c = document.querySelector('#running td.pages');"
                               " return c && parseInt(c.textContent.replace(/,/g, '')) > 0 }",
                               timeout=30_000)
        first = _pages(pages.inner_text())
        page.wait_for_function(
            "n => { const c = document.querySelector('#running td.pages');"
            " return c && parseInt(c.textContent.replace(/,/g, '')) > n }", arg=first,
            timeout=30_000)
        assert _pages(row.locator("td.items").inner_text()) >= 0
        assert float(row.locator("td.rate").inner_text().replace(",", "")) >= 0
        page.screenshot(path=str(shots / "dashboard.png"))

        # the job's own page: live figures and the chart of pages/s and errors
        page.goto(f"{server.url}/jobs/{job}")
        page.locator("svg.chart polyline.rate").wait_for(timeout=30_000)
        page.wait_for_function("() => document.querySelectorAll('ol.items-list li').length >= 3",
                               timeout=30_000)
        page.wait_for_function(  # a few more points on the chart
            "() => { const c = document.querySelector('.figures b.pages');"
            " return c && parseInt(c.textContent.replace(/,/g, '')) >= 90 }", timeout=30_000)
        page.screenshot(path=str(shots / "dashboard-job.png"))
        page.locator("#live button", has_text="Cancel").click()
        expect(page.locator("#flash")).to_contain_text("cancelled", timeout=15_000)
        page.locator("#job-status", has_text="cancelled").wait_for(timeout=45_000)

        page.goto(server.url + "/")
        history = page.locator(f'#finished tr[data-job="{job}"]')
        history.wait_for(timeout=15_000)
        text = history.inner_text()
        assert "cancelled" in text and "interrupted" in text
        assert re.search(r"\b(\d+)\s+(\d+)\s+0\b", text), text  # pages, items, no errors
    finally:
        assert server.stop() == 0
    assert shutil.which("chromium") or Path(CHROMIUM).is_file()
