"""Templates per notification type: neutral subject, body and calendar invitation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from string import Formatter
from typing import Literal

from channels.ics import STOCKHOLM, build_invitation
from channels.message import (
    CalendarInvite,
    NotificationContext,
    NotificationType,
    OutboundMessage,
    Recipient,
    deadline_label,
)
from core.i18n import Language, gettext

ContextField = Literal["due_on", "deadline_kind", "meeting"]

GREETING = "There is something for you in rehabflow."
FOOTER = (
    "Open rehabflow to see the details: {link}\n\n"
    "This message was sent automatically. The details are shown only after you sign in."
)
# Spelled out rather than strftime("%A"), which follows the worker's locale.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class TemplateContextError(ValueError):
    """The context lacks a field the notification type needs; a caller bug, never retried."""


@dataclass(frozen=True)
class Template:
    """Fixed wording of one notification type; a line whose optional value is absent is dropped."""

    subject_en: str
    subject_sv: str
    lines: tuple[str, ...]
    requires: frozenset[ContextField] = frozenset()
    calendar_method: Literal["REQUEST", "CANCEL"] | None = None
    calendar_summary: str | None = None  # the event's title; a joint meeting by default


_MEETING = frozenset[ContextField]({"meeting"})
_DEADLINE = frozenset[ContextField]({"deadline_kind", "due_on"})
_DUE = frozenset[ContextField]({"due_on"})

TEMPLATES: dict[NotificationType, Template] = {
    NotificationType.CASE_ASSIGNED: Template(
        "rehabflow: case {case_ref} has been assigned to you",
        "rehabflow: ärende {case_ref} har tilldelats dig",
        ("Case {case_ref} in unit {unit_code} has been assigned to you.",),
    ),
    NotificationType.MANAGER_CASE_OPENED: Template(
        "rehabflow: a case has been opened in unit {unit_code}",
        "rehabflow: ett ärende har öppnats i enhet {unit_code}",
        ("Case {case_ref} has been opened in your unit {unit_code}.",),
    ),
    NotificationType.CONSENT_REQUESTED: Template(
        "rehabflow: your consent is requested",
        "rehabflow: ditt samtycke efterfrågas",
        ("Your consent is requested in case {case_ref}.", "Please respond by {due_on}."),
    ),
    NotificationType.MEETING_INVITATION: Template(
        "rehabflow: joint meeting on {meeting_date}",
        "rehabflow: gemensamt möte {meeting_date}",
        (
            "You are invited to a joint meeting in case {case_ref} on {meeting_time}.",
            "The calendar invitation is attached.",
        ),
        _MEETING,
        "REQUEST",
    ),
    NotificationType.MEETING_RESCHEDULED: Template(
        "rehabflow: joint meeting moved to {meeting_date}",
        "rehabflow: gemensamt möte flyttat till {meeting_date}",
        (
            "The joint meeting in case {case_ref} has been moved to {meeting_time}.",
            "The updated calendar invitation is attached.",
        ),
        _MEETING,
        "REQUEST",
    ),
    NotificationType.MEETING_CANCELLED: Template(
        "rehabflow: joint meeting on {meeting_date} is cancelled",
        "rehabflow: gemensamt möte {meeting_date} är inställt",
        ("The joint meeting in case {case_ref} on {meeting_time} has been cancelled.",),
        _MEETING,
        "CANCEL",
    ),
    NotificationType.DEADLINE_DUE: Template(
        "rehabflow: deadline in case {case_ref} on {due_date}",
        "rehabflow: tidsfrist i ärende {case_ref} den {due_date}",
        ("The deadline for {deadline} in case {case_ref} is {due_on}.",),
        _DEADLINE,
    ),
    NotificationType.DEADLINE_OVERDUE: Template(
        "rehabflow: overdue deadline in case {case_ref}",
        "rehabflow: passerad tidsfrist i ärende {case_ref}",
        ("The deadline for {deadline} in case {case_ref} was {due_on} and has passed.",),
        _DEADLINE,
    ),
    NotificationType.DEADLINE_ESCALATION: Template(
        "rehabflow: escalated deadline in case {case_ref}",
        "rehabflow: eskalerad tidsfrist i ärende {case_ref}",
        (
            "The deadline for {deadline} in case {case_ref} was {due_on} and has passed.",
            "It has been escalated to you.",
        ),
        _DEADLINE,
    ),
    # The three intervention types say "an action" whatever the intervention is, so a
    # safety-support intervention reads exactly like work training or a care contact.
    NotificationType.INTERVENTION_ASSIGNED: Template(
        "rehabflow: an action in case {case_ref} is assigned to you",
        "rehabflow: en åtgärd i ärende {case_ref} har tilldelats dig",
        ("An action in case {case_ref} has been assigned to you.", "It is due on {due_on}."),
        _DUE,
    ),
    NotificationType.INTERVENTION_REMINDER: Template(
        "rehabflow: an action in case {case_ref} is due on {due_date}",
        "rehabflow: en åtgärd i ärende {case_ref} ska vara klar {due_date}",
        ("An action in case {case_ref} is due on {due_on}.",),
        _DUE,
    ),
    NotificationType.INTERVENTION_OVERDUE: Template(
        "rehabflow: an action in case {case_ref} is overdue",
        "rehabflow: en åtgärd i ärende {case_ref} är försenad",
        ("An action in case {case_ref} was due on {due_on} and is overdue.",),
        _DUE,
    ),
    NotificationType.FOLLOW_UP_DUE: Template(
        "rehabflow: follow-up in case {case_ref} on {due_date}",
        "rehabflow: uppföljning i ärende {case_ref} den {due_date}",
        ("A follow-up in case {case_ref} is due on {due_on}.",),
        _DUE,
    ),
    NotificationType.INFORMATION_REQUEST: Template(
        "rehabflow: information request in case {case_ref}",
        "rehabflow: begäran om uppgifter i ärende {case_ref}",
        (
            "An information request in case {case_ref} is waiting for you.",
            "Please respond by {due_on}.",
        ),
        _DUE,
    ),
    # Information requests never name the party or say what is asked: the recipient's own
    # role already says who they are, and the question itself stays outside rehabflow.
    NotificationType.INFORMATION_REQUEST_REMINDER: Template(
        "rehabflow: information request in case {case_ref} is due on {due_date}",
        "rehabflow: begäran om uppgifter i ärende {case_ref} ska besvaras {due_date}",
        (
            "Reminder: an information request in case {case_ref} is waiting for you.",
            "Please respond by {due_on}.",
        ),
        _DUE,
    ),
    NotificationType.INFORMATION_REQUEST_OVERDUE: Template(
        "rehabflow: information request in case {case_ref} is overdue",
        "rehabflow: begäran om uppgifter i ärende {case_ref} är försenad",
        (
            "An information request in case {case_ref} was due on {due_on} and has not been "
            "answered yet.",
        ),
        _DUE,
    ),
    NotificationType.INFORMATION_REQUEST_CANCELLED: Template(
        "rehabflow: information request in case {case_ref} is withdrawn",
        "rehabflow: begäran om uppgifter i ärende {case_ref} är återkallad",
        (
            "The information request in case {case_ref} has been withdrawn.",
            "No response is needed.",
        ),
    ),
    NotificationType.CASE_CLOSED: Template(
        "rehabflow: case {case_ref} has been closed",
        "rehabflow: ärende {case_ref} har avslutats",
        ("Case {case_ref} in unit {unit_code} has been closed.",),
    ),
    # The yearly course in insurance medicine for managers, given by FK and HR. Worded
    # without "training" or "medicine", words that must never hint at a case's content.
    NotificationType.MANAGER_COURSE_INVITATION: Template(
        "rehabflow: the yearly course for managers on {meeting_date}",
        "rehabflow: den årliga chefsutbildningen {meeting_date}",
        (
            "You are invited to the yearly course for managers, given by Försäkringskassan "
            "and HR, on {meeting_time}.",
            "The calendar invitation is attached.",
        ),
        _MEETING,
        "REQUEST",
        "Yearly course for managers (rehabflow)",
    ),
    NotificationType.MANAGER_COURSE_DUE: Template(
        "rehabflow: the yearly course for managers is due in unit {unit_code}",
        "rehabflow: dags för den årliga chefsutbildningen i enhet {unit_code}",
        (
            "A manager in unit {unit_code} should take the yearly course for managers; it "
            "was due on {due_on}.",
        ),
        _DUE,
    ),
    NotificationType.APT_DIALOGUE_DUE: Template(
        "rehabflow: an APT dialogue is due in unit {unit_code}",
        "rehabflow: dags för en APT-dialog i enhet {unit_code}",
        (
            "Unit {unit_code} should hold an APT dialogue on sustainable working life; it was "
            "due on {due_on}.",
        ),
        _DUE,
    ),
    NotificationType.DEADLINE_DIGEST: Template(
        "rehabflow: overdue deadlines (daily summary)",
        "rehabflow: passerade tidsfrister (daglig sammanfattning)",
        ("Deadlines have passed in your cases.",),
    ),
}

# Notices that wait for the recipient's daily digest instead of going out one by one.
DIGESTED = frozenset({NotificationType.DEADLINE_OVERDUE, NotificationType.DEADLINE_ESCALATION})
_DIGEST_LINES = {
    NotificationType.DEADLINE_OVERDUE: "Case {case_ref}: the deadline for {deadline} was {due_on}.",
    NotificationType.DEADLINE_ESCALATION: (
        "Case {case_ref}: the deadline for {deadline} was {due_on}; it is escalated to you."
    ),
}


@dataclass(frozen=True)
class RenderedNotification:
    subject: str
    text: str
    calendar: CalendarInvite | None


def _day(value: date, language: Language = "en") -> str:
    return f"{gettext(language, WEEKDAYS[value.weekday()])} {value.isoformat()}"


def template_values(
    context: NotificationContext, language: Language = "en"
) -> dict[str, str | None]:
    """The only values a template can show, all derived from the neutral context; the
    words among them (weekday, deadline label) in `language`."""
    meeting = context.meeting
    start = meeting.starts_at.astimezone(STOCKHOLM) if meeting else None
    end = meeting.ends_at.astimezone(STOCKHOLM) if meeting else None
    deadline = deadline_label(context.deadline_kind) if context.deadline_kind else None
    return {
        "case_ref": context.case_ref,
        "unit_code": context.unit_code,
        "link": context.link,
        "due_on": _day(context.due_on, language) if context.due_on else None,
        "due_date": context.due_on.isoformat() if context.due_on else None,
        "deadline": gettext(language, deadline) if deadline else None,
        "meeting_date": start.date().isoformat() if start else None,
        "meeting_time": (
            f"{_day(start.date(), language)}, {start:%H:%M}-{end:%H:%M} "
            + gettext(language, "(Stockholm time)")
            if start and end
            else None
        ),
    }


def _fill(line: str, values: dict[str, str | None]) -> str | None:
    names = [name for _, name, _, _ in Formatter().parse(line) if name]
    if any(values[name] is None for name in names):
        return None
    return line.format_map(values)


def render(
    notification_type: NotificationType,
    context: NotificationContext,
    *,
    created_at: datetime,
    organizer: str | None = None,
    subject_language: Language = "en",
    language: Language | None = None,
) -> RenderedNotification:
    """Render one notification; raises TemplateContextError if a required field is missing.

    `language` renders subject and text in the recipient's language through the catalog
    (core.i18n); without it the text is English and only the subject follows
    `subject_language`."""
    template = TEMPLATES[notification_type]
    missing = sorted(name for name in template.requires if getattr(context, name) is None)
    if missing:
        raise TemplateContextError(f"{notification_type} needs {', '.join(missing)}")
    if context.case_id is None and "{case_ref}" in " ".join((template.subject_en, *template.lines)):
        raise TemplateContextError(f"{notification_type} needs case_id")
    words: Language = language or "en"
    values = template_values(context, words)
    if language is None:
        subject = template.subject_sv if subject_language == "sv" else template.subject_en
    else:
        subject = gettext(language, template.subject_en)

    def say(text: str) -> str:
        return gettext(words, text)

    lines = [filled for line in template.lines if (filled := _fill(say(line), values)) is not None]
    text = "\n\n".join([say(GREETING), "\n".join(lines), say(FOOTER).format_map(values)]) + "\n"
    calendar = None
    if template.calendar_method and context.meeting:
        calendar = build_invitation(
            context.meeting,
            method=template.calendar_method,
            link=context.link,
            stamped_at=created_at,
            organizer=organizer,
            **({"summary": template.calendar_summary} if template.calendar_summary else {}),
        )
    return RenderedNotification(subject.format_map(values), text, calendar)


def compose_message(
    *,
    idempotency_key: str,
    notification_type: NotificationType,
    recipient: Recipient,
    context: NotificationContext,
    created_at: datetime,
    organizer: str | None = None,
    subject_language: Language = "en",
    language: Language | None = None,
) -> OutboundMessage:
    """The one way to build an OutboundMessage, so its text always comes from a template."""
    rendered = render(
        notification_type,
        context,
        created_at=created_at,
        organizer=organizer,
        subject_language=subject_language,
        language=language,
    )
    return OutboundMessage(
        idempotency_key=idempotency_key,
        notification_type=notification_type,
        recipient=recipient,
        context=context,
        subject=rendered.subject,
        text=rendered.text,
        calendar=rendered.calendar,
        created_at=created_at,
    )


def compose_digest(
    *,
    idempotency_key: str,
    recipient: Recipient,
    notices: Sequence[tuple[NotificationType, NotificationContext]],
    created_at: datetime,
    language: Language,
) -> OutboundMessage:
    """One message for a recipient's overdue and escalated deadlines: a line per notice,
    each as neutral as the notice itself, and a link to the overdue cases."""
    if not notices or any(kind not in DIGESTED for kind, _ in notices):
        raise TemplateContextError("a digest holds overdue and escalation notices only")
    template = TEMPLATES[NotificationType.DEADLINE_DIGEST]
    first = notices[0][1]
    lines = []
    for kind, context in notices:
        if context.deadline_kind is None or context.due_on is None:
            raise TemplateContextError(f"{kind} needs deadline_kind, due_on")
        lines.append(
            gettext(language, _DIGEST_LINES[kind]).format_map(template_values(context, language))
        )
    link = f"{str(first.app_url).rstrip('/')}/cases?overdue=yes"
    text = (
        "\n\n".join(
            [
                gettext(language, GREETING),
                gettext(language, template.lines[0]),
                "\n".join(f"- {line}" for line in lines),
                gettext(language, FOOTER).format(link=link),
            ]
        )
        + "\n"
    )
    return OutboundMessage(
        idempotency_key=idempotency_key,
        notification_type=NotificationType.DEADLINE_DIGEST,
        recipient=recipient,
        context=first,
        subject=gettext(language, template.subject_en),
        text=text,
        created_at=created_at,
    )
