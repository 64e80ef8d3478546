"""The workspace in a real browser: sign-in, the case list, forms, need-to-know, language."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.api import Role
from tests.web.conftest import Site, sign_in

pytestmark = pytest.mark.own_temporal("module")

# Valid personal identity numbers (Luhn), one per case.
PINS = ("19811218-9876", "19900101-0017", "19850505-1234", "19720229-3136")


async def refer(site: Site, unit: str, pin: str) -> str:
    response = await site.client.post(
        "/api/v1/cases",
        json={"employee_ref": pin, "unit_code": unit, "trigger": "manager_concern"},
        headers=site.token(Role.COORDINATOR, units=[unit]),
    )
    assert response.status_code == 201, response.text
    case_id: str = response.json()["case_id"]
    return case_id


async def act(site: Site, unit: str, case_id: str, action: str, body: dict[str, Any]) -> None:
    response = await site.client.post(
        f"/api/v1/cases/{case_id}/{action}",
        json=body,
        headers=site.token(Role.COORDINATOR, units=[unit]),
    )
    assert response.status_code == 200, response.text


async def book_in_an_hour(site: Site, env: WorkflowEnvironment, unit: str, case_id: str) -> None:
    starts = await env.get_current_time() + timedelta(hours=1)
    await act(
        site,
        unit,
        case_id,
        "book-joint-meeting",
        {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=1)).isoformat()},
    )


async def fill_meeting_outcome(page: Page, *, disclosure: bool = False) -> None:
    form = page.locator("#action-record_meeting_outcome")
    if not await form.evaluate("details => details.open"):
        await form.locator("summary").click()
    for who in ("employee", "manager", "coordinator"):
        await form.locator(f"input[name=attended][value={who}]").check()
    await form.get_by_label("Mötet hölls av").select_option("coordinator")
    for item in ("physical", "psychological", "sexual", "threats", "at_work"):
        answer = "1" if disclosure and item == "physical" else "0"
        await form.locator(f"select[name='violence_questions.answers.{item}']").select_option(
            answer
        )
    await form.locator("button[type=submit]").click()


async def test_coordinator_sees_the_overdue_case_first_records_an_outcome_and_sees_the_409(
    site: Site,
    new_page: Any,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
) -> None:
    # The overdue case is the older one: newest-first would list it last.
    overdue_case = await refer(site, unit_code, PINS[0])
    today = (await time_skipping_env.get_current_time()).date()
    await act(
        site, unit_code, overdue_case, "set-sick-leave", {"start": str(today - timedelta(days=40))}
    )
    on_time_case = await refer(site, unit_code, PINS[1])
    await book_in_an_hour(site, time_skipping_env, unit_code, on_time_case)

    page: Page = await new_page()
    await page.goto(f"{site.url}/cases")
    await expect(page).to_have_url(f"{site.url}/signin?next=%2Fcases")
    await sign_in(page, site, Role.COORDINATOR, unit=unit_code)
    await expect(page.locator("h1")).to_have_text("Ärenden")
    rows = page.locator("tr.case-row")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_have_attribute("data-case", overdue_case)
    await expect(rows.nth(0)).to_contain_text("Försenat")

    # The meeting has not started yet: the workflow refuses, the page says why, in Swedish.
    await page.goto(f"{site.url}/cases/{on_time_case}")
    await expect(page.locator("#stage")).to_have_text("Gemensamt möte")
    await fill_meeting_outcome(page)
    refusal = page.locator("[data-form-error=record_meeting_outcome]")
    await expect(refusal).to_contain_text("det gemensamma mötet har inte börjat än")
    await expect(page.locator("#stage")).to_have_text("Gemensamt möte")

    await time_skipping_env.sleep(timedelta(hours=2))
    await fill_meeting_outcome(page)
    await expect(page.locator(".notice")).to_contain_text("Registrera mötets resultat")
    await expect(page.locator("#stage")).to_have_text("Kartläggning")

    # A second outcome does not fit the stage any more: 409 with the reason.
    page_two: Page = await new_page()
    await page_two.goto(f"{site.url}/cases/{on_time_case}")
    await sign_in(page_two, site, Role.COORDINATOR, unit=unit_code)
    response = await page_two.request.post(
        f"{site.url}/cases/{on_time_case}/actions/record_meeting_outcome",
        form={
            "csrf_token": await page_two.locator("input[name=csrf_token]").first.input_value(),
            "attended": "coordinator",
            "held_by": "coordinator",
        },
    )
    assert response.status == 409
    assert "bara i steget Gemensamt möte" in await response.text()
