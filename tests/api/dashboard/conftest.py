"""A real headless Chromium (Debian's, driven by Playwright) against a real server."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.conftest import missing
from tests.workers.conftest import TOKENS, ServerProcess

CHROMIUM = os.environ.get("HPSEARCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium as root, headless, and quiet on a machine with no outside network
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ADMIN_TOKEN = TOKENS["HPSEARCH_ADMIN_TOKEN"]
SIGN_IN_PAGE = re.compile(r"/login(\?|$)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set HPSEARCH_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


class Watched:
    """A browser page that keeps every console error, page error and failed response."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on(
            "response",
            lambda r: self.problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
        )

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text} at {message.location}")


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield Watched(context.new_page())
    context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: HPSEARCH_SCREENSHOTS (the README's come from docs/screenshots)."""
    where = os.environ.get("HPSEARCH_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def sign_in(watched: Watched, base: str, token: str = ADMIN_TOKEN) -> None:
    page = watched.page
    page.goto(f"{base}/")
    page.wait_for_url(SIGN_IN_PAGE)
    page.fill("input[name=token]", token)
    page.click("#signin button")


def chart_traces(page: Page, chart_id: str) -> list[dict[str, Any]]:
    """The traces plotly drew in a chart's div (waits until there are some)."""
    page.wait_for_function(
        f"() => document.getElementById('{chart_id}').data && "
        f"document.getElementById('{chart_id}').data.length > 0",
        timeout=30_000,
    )
    traces: list[dict[str, Any]] = page.evaluate(
        f"""() => document.getElementById('{chart_id}').data.map(
            t => ({{name: t.name, points: (t.x || t.y || []).length}}))"""
    )
    return traces


def serving(
    url: str, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[ServerProcess]:
    """``hpsearch serve`` on the database at ``url`` while the caller's fixture lasts."""
    server = ServerProcess(url, tmp_path_factory.mktemp(name) / "server.log")
    server.env["HPSEARCH_ARTIFACT_DIR"] = os.environ["HPSEARCH_ARTIFACT_DIR"]  # where runs wrote
    server.start()
    yield server
    server.stop()
