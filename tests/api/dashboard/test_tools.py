"""The tools the server hosts besides its own pages, in a real browser with no network: the API's
documentation (Swagger UI, ReDoc) and optuna-dashboard, changing studies through its shim."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.dashboard.conftest import Watched, sign_in
from tests.workers.conftest import ServerProcess


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    where: Path = tmp_path_factory.mktemp("tools")
    server = ServerProcess(f"sqlite:///{where / 'tools.db'}", where / "server.log")
    server.start()
    yield server.url
    server.stop()


def test_the_api_docs_render_from_this_server_alone(empty: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{empty}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.innerText)")
    assert "/api/studies/{study}" in [p.strip() for p in paths]
    assert watched.problems == []
    page.goto(f"{empty}/redoc")
    page.wait_for_function(
        "() => document.body.innerText.includes('/api/studies/{study}/trials')", timeout=30_000
    )
    # ReDoc's one try outside: its logo in the sidebar's footer, hidden when it does not load
    assert all("cdn.redoc.ly/redoc/logo-mini.svg" in p for p in watched.problems)


def test_optuna_dashboard_changes_studies_through_its_shim(empty: str, watched: Watched) -> None:
    page = watched.page
    sign_in(watched, empty)  # the session cookie: changes need the header the shim adds
    page.wait_for_selector("#studies")
    page.goto(f"{empty}/optuna/dashboard")
    page.wait_for_load_state("networkidle")
    # the bundle's own calls go through window.fetch as patched by the shim, as here
    created = page.evaluate(
        """async () => {
            const r = await fetch("/api/studies", {method: "POST",
                headers: {"Content-Type": "application/json"},
                body: JSON.stringify({study_name: "from-the-ui", directions: ["maximize"]})});
            return [r.status, (await r.json()).study_summary.study_id];
        }"""
    )
    assert created[0] == 201
    page.reload()
    page.wait_for_selector("text=from-the-ui", timeout=30_000)
    gone = page.evaluate(
        """async (id) => (await fetch(`/api/studies/${id}`, {method: "DELETE",
            headers: {"Content-Type": "application/json"}, body: "{}"})).status""",
        created[1],
    )
    assert gone == 204
    assert watched.problems == []
