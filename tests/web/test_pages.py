"""The workspace in a real browser: sign-in, the case list, forms, need-to-know, language."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from channels.smtp import SmtpChannel, SmtpSettings
from models.api import Role
from models.notification import DispatchRequest
from store.contacts import add_unit_contact
from store.schema import Notification
from tests.api_steps import meeting_outcome, violence
from tests.case_steps import eventually
from tests.outbox_support import RecordingSmtpHandler, dispatcher, free_port
from tests.web.conftest import Site, sign_in, snapshot, unlabelled_controls

pytestmark = pytest.mark.own_temporal("module")

# Valid personal identity numbers (Luhn), one per case.
PINS = (
    "19811218-9876",
    "19900101-0017",
    "19850505-1238",
    "19720229-3135",
    "19660606-0025",
    "19770707-0038",
)


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
    await snapshot(page, "cases")

    # The meeting has not started yet: the workflow refuses, the page says why, in Swedish.
    await page.goto(f"{site.url}/cases/{on_time_case}")
    await expect(page.locator("#stage")).to_have_text("Gemensamt möte")
    assert await unlabelled_controls(page) == []
    await fill_meeting_outcome(page)
    refusal = page.locator("[data-form-error=record_meeting_outcome]")
    await expect(refusal).to_contain_text("det gemensamma mötet har inte börjat än")
    await refusal.scroll_into_view_if_needed()
    await snapshot(page, "refused")
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


async def case_with_a_disclosure(site: Site, env: WorkflowEnvironment, unit: str, pin: str) -> str:
    """A case whose joint meeting found social and work needs and heard a disclosure."""
    case_id = await refer(site, unit, pin)
    await book_in_an_hour(site, env, unit, case_id)
    await env.sleep(timedelta(hours=2))
    due = str((await env.get_current_time()).date() + timedelta(days=14))
    await act(
        site,
        unit,
        case_id,
        "record-meeting-outcome",
        meeting_outcome(
            questions=violence("physical"),
            next_steps=[
                {
                    "track": "social",
                    "kind": "debt_counselling",
                    "owner": "social_services",
                    "due_on": due,
                },
                {
                    "track": "work_oriented",
                    "kind": "work_adaptation",
                    "owner": "manager",
                    "due_on": due,
                },
            ],
        ),
    )
    return case_id


async def test_a_manager_sees_no_medical_or_social_detail_and_no_violence_track(
    site: Site,
    new_page: Any,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
) -> None:
    case_id = await case_with_a_disclosure(site, time_skipping_env, unit_code, PINS[2])

    coordinator: Page = await new_page()
    await coordinator.goto(f"{site.url}/cases/{case_id}")
    await sign_in(coordinator, site, Role.COORDINATOR, unit=unit_code)
    protected = coordinator.locator("#protected-track")
    await expect(protected).to_contain_text("Uppgift om våldsutsatthet")
    await expect(protected).to_contain_text("Skyddsinsats")
    await expect(coordinator.locator("main")).to_contain_text("debt_counselling")

    manager: Page = await new_page()
    await manager.goto(f"{site.url}/cases/{case_id}")
    await sign_in(manager, site, Role.MANAGER, unit=unit_code)
    await expect(manager.locator("#stage")).to_have_text("Kartläggning")
    main = manager.locator("main")
    await expect(main).to_contain_text(
        "work_adaptation"
    )  # the work-oriented track is the manager's
    text = await main.inner_text()
    for hidden in (
        "Skyddat spår",
        "våld",
        "Skyddsinsats",
        "debt_counselling",
        "Socialt",
        "Medicinskt",
        "Samtycken",
    ):
        assert hidden not in text, hidden
    assert await manager.locator("#protected-track").count() == 0
    # The manager's forms offer nothing of the medical or social tracks either.
    assert await manager.locator("#action-request_information").count() == 0


async def test_an_employee_withdraws_fk_consent_and_the_fk_officer_then_gets_404(
    site: Site,
    new_page: Any,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
) -> None:
    case_id = await refer(site, unit_code, PINS[3])
    await act(site, unit_code, case_id, "record-consent", {"party": "fk", "given": True})
    fk = site.token(Role.FK_OFFICER, subject="fk-officer-7")
    assert (await site.client.get(f"/api/v1/cases/{case_id}", headers=fk)).status_code == 200
    # The coordinator reads the whole case: the employee will see that read.
    coordinator = site.token(Role.COORDINATOR, subject="anna.koordinator", units=[unit_code])
    assert (await site.client.get(f"/api/v1/cases/{case_id}", headers=coordinator)).is_success

    page: Page = await new_page()
    await page.goto(f"{site.url}/signin")
    await sign_in(page, site, Role.EMPLOYEE, pin=PINS[3])
    await expect(page).to_have_url(f"{site.url}/cases/{case_id}")
    await expect(page.locator("h1")).to_have_text("Mitt rehabiliteringsärende")
    await expect(page.locator("#stage-explained")).to_contain_text("Ditt ärende har öppnats")
    reads = page.locator("table.reads")
    await expect(reads).to_contain_text("anna.koordinator")
    await expect(reads).to_contain_text("hela ärendet")

    assert await unlabelled_controls(page) == []
    fk_row = page.locator("tr[data-party=fk]")
    await expect(fk_row).to_contain_text("givet")
    await fk_row.get_by_role("button", name="Återkalla samtycket för Försäkringskassan").click()
    await expect(page.locator(".notice")).to_be_visible()
    await expect(page.locator("tr[data-party=fk]")).to_contain_text("återkallat")

    assert (await site.client.get(f"/api/v1/cases/{case_id}", headers=fk)).status_code == 404


async def test_the_link_in_a_delivered_email_opens_the_case_after_sign_in_in_swedish(
    site: Site,
    new_page: Any,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    handler = RecordingSmtpHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="localhost")
    controller.start()
    try:
        async with sessionmaker.begin() as session:
            await add_unit_contact(
                session,
                unit_code=unit_code,
                role="manager",
                channel="email",
                address="chef@example.org",
            )
            await add_unit_contact(
                session,
                unit_code=unit_code,
                role="manager",
                channel="email",
                address="manager@example.org",
                language="en",
            )
        case_id = await refer(site, unit_code, PINS[4])

        async def opened_notices() -> list[str]:
            async with sessionmaker() as session:
                return list(
                    await session.scalars(
                        select(Notification.notification_type).where(
                            Notification.case_id == uuid.UUID(case_id),
                            Notification.notification_type == "manager_case_opened",
                        )
                    )
                )

        # The case's first activity writes its notices just after the referral is answered.
        await eventually(opened_notices, lambda found: len(found) == 2)
        smtp = SmtpChannel(
            SmtpSettings(
                host="127.0.0.1",
                port=port,
                start_tls=False,
                from_address="rehabflow@example.org",
                timeout_s=5,
                local_hostname="localhost",
            )
        )
        dispatch = dispatcher(sessionmaker, email_channel=smtp, app_url=site.url)
        await ActivityEnvironment().run(dispatch.dispatch_due, DispatchRequest(run_for_s=0))
    finally:
        controller.stop()

    opened = {str(m["To"]): m for m in handler.received if unit_code in str(m["Subject"])}
    swedish, english = opened["chef@example.org"], opened["manager@example.org"]
    assert swedish["Subject"] == f"rehabflow: ett ärende har öppnats i enhet {unit_code}"
    assert english["Subject"] == f"rehabflow: a case has been opened in unit {unit_code}"
    body = swedish.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Öppna rehabflow för att se detaljerna" in text
    (link,) = re.findall(r"http://127\.0\.0\.1:\d+/cases/[0-9a-f-]+", text)
    assert link == f"{site.url}/cases/{case_id}"

    page: Page = await new_page()
    await page.goto(link)
    await expect(page.locator("h1")).to_have_text("Logga in")
    await sign_in(page, site, Role.MANAGER, unit=unit_code)
    await expect(page).to_have_url(link)
    await expect(page.locator("h1")).to_contain_text(f"Ärende {uuid.UUID(case_id).hex[:8].upper()}")


async def test_pages_are_swedish_by_default_and_english_by_choice_or_by_the_browser(
    site: Site, new_page: Any, unit_code: str
) -> None:
    page: Page = await new_page(locale="de-DE")  # a language rehabflow does not offer
    await page.goto(f"{site.url}/cases")
    await expect(page.locator("html")).to_have_attribute("lang", "sv")
    await expect(page.locator("h1")).to_have_text("Logga in")
    assert await unlabelled_controls(page) == []
    # Keyboard first: the first Tab reaches the link that skips to the content.
    await page.keyboard.press("Tab")
    await expect(page.locator(":focus")).to_have_text("Hoppa till innehållet")
    await sign_in(page, site, Role.COORDINATOR, unit=unit_code)
    await expect(page.locator("h1")).to_have_text("Ärenden")
    await expect(page.get_by_label("Steg")).to_be_visible()
    assert await unlabelled_controls(page) == []

    await page.get_by_role("button", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("h1")).to_have_text("Cases")
    await page.goto(f"{site.url}/cases")  # the choice is kept
    await expect(page.locator("h1")).to_have_text("Cases")

    english_browser: Page = await new_page(locale="en-GB")
    await english_browser.goto(f"{site.url}/signin")
    await expect(english_browser.locator("html")).to_have_attribute("lang", "en")
    await expect(english_browser.locator("h1")).to_have_text("Sign in")

    # Every page carries the policy: no inline script, nothing from another origin.
    response = await site.client.get("/signin")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    cookie = next(c for c in await page.context.cookies() if c["name"] == "rehabflow_session")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"


async def test_a_coordinator_sees_the_teams_coming_slots_seats_and_waiting_cases(
    site: Site,
    new_page: Any,
    worker: Worker,
    time_skipping_env: WorkflowEnvironment,
    unit_code: str,
) -> None:
    today = (await time_skipping_env.get_current_time()).date()
    team = await site.client.post(
        "/api/v1/meeting-teams",
        json={
            "code": "JM-WEB",
            "name": "Gemensamma möten norr",
            "weekday": 2,
            "starts_at": "09:00",
            "meeting_minutes": 45,
            "capacity": 4,
            "anchor_on": str(today + timedelta(days=21)),
            "lead_hours": 72,
            "units": [unit_code],
            "coordinators": ["koordinator@example.org"],
        },
        headers=site.token(Role.ADMIN),
    )
    assert team.status_code == 201, team.text
    case_id = await refer(site, unit_code, PINS[5])

    page: Page = await new_page()
    await page.goto(f"{site.url}/teams")
    await sign_in(page, site, Role.COORDINATOR, unit=unit_code)
    await page.get_by_role("link", name="Gemensamma möten norr (JM-WEB)").click()
    await expect(page.locator("h1")).to_contain_text("Gemensamma möten norr")
    await expect(page.locator("#h-slots")).to_have_text("Kommande möten")
    await expect(page.locator("main table tbody tr").first).to_contain_text("/ 4")
    short = uuid.UUID(case_id).hex[:8].upper()
    await expect(page.get_by_role("link", name=short)).to_be_visible()
    await page.get_by_role("link", name=short).click()
    await expect(page).to_have_url(f"{site.url}/cases/{case_id}")

    manager: Page = await new_page()
    await manager.goto(f"{site.url}/signin")
    await sign_in(manager, site, Role.MANAGER, unit=unit_code)
    refused = await manager.goto(f"{site.url}/teams/JM-WEB")
    assert refused is not None and refused.status == 403
    await expect(manager.locator(".error")).to_have_text("din roll får inte se mötesscheman")
