"""Sign-in in production mode: authorization code with PKCE against a real local provider."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from tests.web.conftest import served_site, serving
from tests.web.oidc_provider import Provider


async def test_oidc_sign_in_with_pkce_returns_to_the_page_asked_for(
    browser: Browser, settings: Settings, time_skipping_env: WorkflowEnvironment, unit_code: str
) -> None:
    provider = Provider(
        client_id="rehabflow-pages",
        user_claims={"rehabflow_role": "coordinator", "rehabflow_units": [unit_code]},
    )
    async with serving(provider.app()) as issuer:
        provider.issuer = issuer
        oidc_settings = settings.model_copy(
            update={
                "auth": settings.auth.model_copy(
                    update={
                        "mode": "oidc",
                        "issuer": issuer,
                        "jwks_url": f"{issuer}/jwks",
                        "client_id": "rehabflow-pages",
                    }
                )
            }
        )
        async with served_site(oidc_settings, time_skipping_env) as site:
            context = await browser.new_context(locale="sv-SE")
            page = await context.new_page()
            try:
                await page.goto(f"{site.url}/cases?stage=identified")
                await expect(page.locator("h1")).to_have_text("Logga in")
                # Production mode has no dev sign-in.
                assert await page.locator("form[action='/signin/dev']").count() == 0
                dev: Any = await site.client.post("/signin/dev", data={"role": "coordinator"})
                assert dev.status_code == 404
                await page.get_by_role("link", name="Logga in").click()
                await expect(page).to_have_url(f"{site.url}/cases?stage=identified")
                await expect(page.locator("h1")).to_have_text("Ärenden")
                await expect(page.locator(".who")).to_contain_text("Rehabkoordinator")
                assert provider.refused == []

                # A callback that is not the answer to this browser's sign-in is refused.
                replay = await site.client.get("/signin/callback?code=used&state=x")
                assert replay.status_code == 400
            finally:
                await context.close()
