"""Every notification template renders neutral content only, whatever a caller tries to pass."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from pydantic import ValidationError

from channels import (
    DEADLINE_LABELS,
    MeetingSlot,
    NotificationContext,
    NotificationType,
    OutboundMessage,
    Recipient,
    RecipientRole,
)
from channels.mail import compose_email
from channels.templates import (
    TEMPLATES,
    Language,
    TemplateContextError,
    compose_message,
    render,
    template_values,
)
from channels.webhook import cloud_event
from models.policy import POLICIES

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CREATED_AT = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
ALL_TYPES = list(NotificationType)

# Words that would betray health data, violence exposure, an intervention's nature or an
# identity. None may appear anywhere a notification goes.
CANARIES = (
    "violence", "våld", "KEDS", "diagnos", "screening", "score", "safety", "skydd",
    "threat", "abuse", "misshandel", "ICD", "F32", "sjukdom", "depression", "medical",
    "medicin", "social", "training", "arbetsträning", "personnummer", "samordningsnummer",
    "19121212", "Tolvan", "Tolvansson",
)  # fmt: skip


def make_context(**overrides: Any) -> NotificationContext:
    start = datetime(2026, 3, 30, 9, 0, tzinfo=STOCKHOLM)
    fields: dict[str, Any] = {
        "case_id": UUID("3f2a9c1b-5d4e-4f60-8a7b-9c0d1e2f3a4b"),
        "unit_code": "SKV-HEM-04",
        "app_url": "https://rehabflow.example",
        "due_on": date(2026, 4, 14),
        "deadline_kind": "fk_sick_notice",
        "meeting": MeetingSlot(
            meeting_id=UUID("0b1c2d3e-4f50-4a6b-8c7d-8e9f0a1b2c3d"),
            starts_at=start,
            ends_at=start + timedelta(hours=1),
        ),
    }
    return NotificationContext(**(fields | overrides))


def make_message(
    notification_type: NotificationType,
    context: NotificationContext | None = None,
    language: Language = "en",
) -> OutboundMessage:
    return compose_message(
        idempotency_key=f"case-x:{notification_type}:1",
        notification_type=notification_type,
        recipient=Recipient(address="someone@example.org", role=RecipientRole.MANAGER),
        context=context or make_context(),
        created_at=CREATED_AT,
        organizer="noreply@rehabflow.example",
        subject_language=language,
    )


def everything_sent(message: OutboundMessage) -> str:
    """Subject, body, invitation, full e-mail and webhook payload, as one searchable text."""
    parts = [message.subject, message.text, compose_email(message, "noreply@rehabflow.example")]
    if message.calendar is not None:
        parts.append(message.calendar.ics.decode())
    parts.append(json.dumps(cloud_event(message), ensure_ascii=False))
    return "\n".join(str(part) for part in parts)


def test_every_notification_type_has_a_template() -> None:
    assert set(TEMPLATES) == set(NotificationType)


@pytest.mark.parametrize("notification_type", ALL_TYPES)
@pytest.mark.parametrize("language", ["en", "sv"])
def test_no_canary_word_appears_in_subject_body_ics_or_webhook_payload(
    notification_type: NotificationType, language: Language
) -> None:
    for kind in sorted(DEADLINE_LABELS):  # every kind of every registered policy
        message = make_message(notification_type, make_context(deadline_kind=kind), language)
        sent = everything_sent(message).casefold()

        leaked = [word for word in CANARIES if word.casefold() in sent]
        assert leaked == [], f"{notification_type} leaks {leaked}"


@pytest.mark.parametrize("notification_type", ALL_TYPES)
def test_every_type_says_there_is_something_in_rehabflow_with_a_link(
    notification_type: NotificationType,
) -> None:
    message = make_message(notification_type)

    assert message.text.startswith("There is something for you in rehabflow.")
    assert "https://rehabflow.example/cases/3f2a9c1b-5d4e-4f60-8a7b-9c0d1e2f3a4b" in message.text
    assert message.subject.startswith("rehabflow: ")


@pytest.mark.parametrize("notification_type", ALL_TYPES)
def test_rendered_text_varies_only_in_the_neutral_context_fields(
    notification_type: NotificationType,
) -> None:
    other_start = datetime(2027, 11, 2, 14, 30, tzinfo=STOCKHOLM)
    other = make_context(
        case_id=UUID("aa11bb22-cc33-4d44-8e55-ff6677889900"),
        unit_code="TIB-SKOLA-2",
        app_url="https://rehab.kommun.example",
        due_on=date(2027, 10, 1),
        deadline_kind="return_to_work_plan",
        meeting=MeetingSlot(
            meeting_id=UUID("99999999-8888-4777-8666-555555555555"),
            starts_at=other_start,
            ends_at=other_start + timedelta(minutes=45),
            sequence=3,
        ),
    )

    def skeleton(context: NotificationContext) -> tuple[str, str]:
        rendered = render(notification_type, context, created_at=CREATED_AT)
        subject, text = rendered.subject, rendered.text
        values = {name: value for name, value in template_values(context).items() if value}
        # Longest first, so a date inside a longer meeting time is not replaced half-way.
        for name, value in sorted(values.items(), key=lambda item: -len(item[1])):
            subject, text = subject.replace(value, f"<{name}>"), text.replace(value, f"<{name}>")
        return subject, text

    assert skeleton(make_context()) == skeleton(other)


@pytest.mark.parametrize(
    "smuggled",
    [
        {"diagnosis": "F32.1"},
        {"screening_score": 27},
        {"keds_score": 27},
        {"violence_disclosed": True},
        {"employee_name": "Tolvan Tolvansson"},
        {"personal_identity_number": "19121212-1212"},
        {"note": "free text"},
        {"message": "free text"},
        {"intervention_kind": "safety_support"},
        {"track": "social"},
    ],
)
def test_context_refuses_any_field_beyond_the_neutral_ones(smuggled: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        make_context(**smuggled)


def test_meeting_refuses_location_and_attendees() -> None:
    start = datetime(2026, 3, 30, 9, 0, tzinfo=STOCKHOLM)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        MeetingSlot(
            meeting_id=UUID(int=1),
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            attendees=["Tolvan Tolvansson"],
        )


def test_every_kind_of_every_registered_policy_has_a_label() -> None:
    kinds = {
        rule.kind
        for policy in POLICIES.values()
        for rule in (*policy.identification_triggers, *policy.deadlines)
    }

    assert kinds <= set(DEADLINE_LABELS)
    assert {"fk_sick_notice", "rehab_chain_day_90", "dialogue_meeting_1", "follow_up_1"} <= set(
        DEADLINE_LABELS
    )


@pytest.mark.parametrize(
    "deadline_kind",
    ["sick_leave_certificate", "the plan; diagnosis F32", "Fk_sick_notice", "", "violence"],
)
def test_deadline_kind_must_be_a_kind_of_a_registered_policy(deadline_kind: str) -> None:
    with pytest.raises(ValidationError, match="registered policy"):
        make_context(deadline_kind=deadline_kind)


@pytest.mark.parametrize("unit_code", ["Unit 4 depression", "SKV\nHEM", "", "x" * 33])
def test_unit_code_cannot_carry_free_text(unit_code: str) -> None:
    with pytest.raises(ValidationError):
        make_context(unit_code=unit_code)


@pytest.mark.parametrize(
    "app_url",
    [
        "https://rehabflow.example/diagnosis/F32",
        "https://rehabflow.example/?violence=1",
        "https://rehabflow.example/#screening",
        "https://tolvan:secret@rehabflow.example",
    ],
)
def test_app_url_must_be_a_bare_origin(app_url: str) -> None:
    with pytest.raises(ValidationError, match="app_url must be an origin"):
        make_context(app_url=app_url)


def test_naive_meeting_time_is_refused() -> None:
    with pytest.raises(ValidationError):
        MeetingSlot(
            meeting_id=UUID(int=1),
            starts_at=datetime(2026, 3, 30, 9, 0),
            ends_at=datetime(2026, 3, 30, 10, 0),
        )


@pytest.mark.parametrize(
    ("notification_type", "missing"),
    [
        (NotificationType.MEETING_INVITATION, {"meeting": None}),
        (NotificationType.DEADLINE_DUE, {"deadline_kind": None}),
        (NotificationType.DEADLINE_OVERDUE, {"due_on": None}),
        (NotificationType.INTERVENTION_REMINDER, {"due_on": None}),
    ],
)
def test_missing_required_context_field_is_a_template_error(
    notification_type: NotificationType, missing: dict[str, None]
) -> None:
    with pytest.raises(TemplateContextError, match=next(iter(missing))):
        render(notification_type, make_context(**missing), created_at=CREATED_AT)


@pytest.mark.parametrize("notification_type", ALL_TYPES)
def test_every_type_renders_from_only_the_fields_it_requires(
    notification_type: NotificationType,
) -> None:
    required = TEMPLATES[notification_type].requires
    optional = {
        name: None for name in ("due_on", "deadline_kind", "meeting") if name not in required
    }

    rendered = render(notification_type, make_context(**optional), created_at=CREATED_AT)

    assert "{" not in rendered.subject + rendered.text
    assert "None" not in rendered.subject + rendered.text


def test_deadline_notice_names_the_deadline_case_and_date() -> None:
    message = make_message(NotificationType.DEADLINE_DUE)

    assert message.subject == "rehabflow: deadline in case 3F2A9C1B on 2026-04-14"
    assert (
        "The deadline for the sick notice to Försäkringskassan in case 3F2A9C1B "
        "is Tuesday 2026-04-14." in message.text
    )


def test_meeting_time_is_written_in_stockholm_time_whatever_zone_it_came_in() -> None:
    start = datetime(2026, 6, 10, 6, 30, tzinfo=UTC)  # 08:30 CEST
    slot = MeetingSlot(
        meeting_id=UUID(int=7), starts_at=start, ends_at=start + timedelta(minutes=90)
    )

    message = make_message(NotificationType.MEETING_INVITATION, make_context(meeting=slot))

    assert "on Wednesday 2026-06-10, 08:30-10:00 (Stockholm time)." in message.text


def test_swedish_subject_lines_are_available() -> None:
    rendered = render(
        NotificationType.INTERVENTION_OVERDUE,
        make_context(),
        created_at=CREATED_AT,
        subject_language="sv",
    )

    assert rendered.subject == "rehabflow: en åtgärd i ärende 3F2A9C1B är försenad"


@pytest.mark.parametrize(
    "notification_type",
    [
        NotificationType.INTERVENTION_ASSIGNED,
        NotificationType.INTERVENTION_REMINDER,
        NotificationType.INTERVENTION_OVERDUE,
    ],
)
def test_intervention_notifications_speak_only_of_an_action(
    notification_type: NotificationType,
) -> None:
    message = make_message(notification_type)

    assert "An action in case 3F2A9C1B" in message.text
    assert "2026-04-14" in message.text
    assert "deadline" not in message.text.casefold()  # the deadline kind is not shown either


def test_optional_due_date_line_is_left_out_when_there_is_no_date() -> None:
    with_date = make_message(NotificationType.CONSENT_REQUESTED)
    without = make_message(NotificationType.CONSENT_REQUESTED, make_context(due_on=None))

    assert "Please respond by Tuesday 2026-04-14." in with_date.text
    assert "respond by" not in without.text


def test_webhook_data_holds_exactly_the_neutral_fields() -> None:
    event = cloud_event(make_message(NotificationType.MEETING_RESCHEDULED))

    assert set(event) == {"specversion", "id", "source", "type", "time", "datacontenttype", "data"}
    assert set(event["data"]) == {
        "notification_type", "recipient_role", "case_id", "case_ref", "unit_code", "link",
        "due_on", "deadline_kind", "deadline_label", "meeting",
    }  # fmt: skip
    assert set(event["data"]["meeting"]) == {"meeting_id", "starts_at", "ends_at", "sequence"}
    assert "someone@example.org" not in json.dumps(event)


@pytest.mark.parametrize(
    "notification_type",
    [
        NotificationType.MEETING_INVITATION,
        NotificationType.MEETING_RESCHEDULED,
        NotificationType.MEETING_CANCELLED,
    ],
)
def test_invitation_has_neutral_summary_and_names_no_attendee(
    notification_type: NotificationType,
) -> None:
    message = make_message(notification_type)
    assert message.calendar is not None

    (event,) = Calendar.from_ical(message.calendar.ics).events

    assert event["SUMMARY"] == "Joint meeting (rehabflow)"
    assert "ATTENDEE" not in event
    assert set(event) <= {
        "UID", "SEQUENCE", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "DESCRIPTION", "URL",
        "STATUS", "ORGANIZER",
    }  # fmt: skip
    assert "someone@example.org" not in message.calendar.ics.decode()


@pytest.mark.parametrize(
    "notification_type",
    [t for t in ALL_TYPES if TEMPLATES[t].calendar_method is None],
)
def test_only_meeting_notifications_carry_an_invitation(
    notification_type: NotificationType,
) -> None:
    assert make_message(notification_type).calendar is None
