"""Browser tests: Debian's Chromium driven by playwright, one browser for the session, the
real API app (pages included) served by uvicorn on a free loopback port per test."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import EmbeddedIssuer
from core.settings import Settings
from models.api import Role

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
INSTALL_HINT = "Chromium is missing: install Debian's package with `apt-get install -y chromium`"


def chromium_path() -> str:
    """Debian's Chromium; installed here when the tests run as root, else one line on how."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False)
        found = shutil.which("chromium")
        if found is None:
            subprocess.run(["apt-get", "update", "-q"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=False)
            found = shutil.which("chromium")
        if found:
            return found
    pytest.fail(INSTALL_HINT, pytrace=False)


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_FLAGS, headless=True
        )
        yield launched
        await launched.close()


@dataclass
class Site:
    """The app served on loopback: its origin, a JSON client for set-up, its token issuer."""

    url: str
    issuer: EmbeddedIssuer
    client: httpx.AsyncClient
    pages: list[Page] = field(default_factory=list)

    def token(self, role: Role, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.mint(role, **claims)}"}


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """An ASGI app served by uvicorn on a free loopback port; yields its origin."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the app failed to start"
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def served_site(settings: Settings, env: WorkflowEnvironment) -> AsyncIterator[Site]:
    async with (
        serving(create_app(settings, temporal_client=env.client)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield Site(url, EmbeddedIssuer.load_or_create(settings), client)


@pytest_asyncio.fixture
async def site(settings: Settings, time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Site]:
    async with served_site(settings, time_skipping_env) as served:
        yield served


@pytest_asyncio.fixture
async def new_page(
    browser: Browser, site: Site, request: pytest.FixtureRequest
) -> AsyncIterator[Any]:
    """Opens pages in fresh browser contexts (one per person); on failure every page opened
    is saved as a screenshot under test-artifacts/screenshots/."""
    contexts: list[BrowserContext] = []

    async def open_page(locale: str = "sv-SE") -> Page:
        # The browser's language is its Accept-Language; Swedish staff's browsers by default.
        context = await browser.new_context(locale=locale)
        contexts.append(context)
        page = await context.new_page()
        site.pages.append(page)
        return page

    yield open_page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
        for number, page in enumerate(site.pages):
            if not page.is_closed():
                await page.screenshot(path=ARTIFACTS / f"{name}-{number}.png", full_page=True)
    for context in contexts:
        await context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


async def sign_in(page: Page, site: Site, role: Role, *, unit: str = "", pin: str = "") -> None:
    """The dev sign-in form, as a person fills it in (the page must show it)."""
    if "/signin" not in page.url:
        await page.goto(f"{site.url}/signin")
    await page.select_option("#role", role.value)
    if unit:
        await page.fill("#unit", unit)
    if pin:
        await page.fill("#employee_ref", pin)
    await page.click("form[action='/signin/dev'] button[type=submit]")


UNLABELLED_CONTROLS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
  .map(el => el.name || el.id)"""


async def unlabelled_controls(page: Page) -> list[str]:
    """Form controls without a label (WCAG 2.1 1.3.1, 3.3.2): there must be none."""
    names: list[str] = await page.evaluate(UNLABELLED_CONTROLS)
    return names


async def snapshot(page: Page, name: str) -> None:
    """With REHABFLOW_SCREENSHOTS=<dir> set, save the page for the README (docs/screenshots)."""
    target = os.environ.get("REHABFLOW_SCREENSHOTS")
    if target:
        await page.set_viewport_size({"width": 1100, "height": 800})
        await page.screenshot(path=Path(target) / f"{name}.png", full_page=False)
