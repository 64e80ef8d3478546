"""Swedish first: every text a page, a notification or a form shows has a Swedish translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from channels.message import DEADLINE_LABELS
from channels.templates import FOOTER, GREETING, TEMPLATES, WEEKDAYS
from core.i18n import REASON_PATTERNS, gettext, negotiate, translate_reason, translations
from models.api import Role
from models.case import ConsentParty, Stage, Track
from web.actions import ACTIONS, TITLES

ROOT = Path(__file__).resolve().parents[2]


def _template_messages() -> set[str]:
    found = extract_from_dir(
        ROOT / "web" / "templates",
        method_map=[("**.html", "jinja2")],
        options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
    )
    messages: set[str] = set()
    for _, _, message, _, _ in found:
        messages.update([message] if isinstance(message, str) else [m for m in message if m])
    return messages


def _untranslated(messages: set[str]) -> list[str]:
    catalog = translations("sv")._catalog  # gettext's own table
    return sorted(m for m in messages if m not in catalog)


def test_every_page_text_has_a_swedish_translation() -> None:
    messages = _template_messages()
    assert len(messages) > 80
    assert _untranslated(messages) == []


def test_every_code_a_page_shows_has_a_swedish_label() -> None:
    codes = {s.value for s in Stage} | {r.value for r in Role} | {p.value for p in ConsentParty}
    codes |= {t.value for t in Track} | set(DEADLINE_LABELS) | {f"explain:{s.value}" for s in Stage}
    codes |= {TITLES[name] for name in ACTIONS}
    # The dev sign-in's role names read as people say them, and no code leaks as a label.
    assert _untranslated(codes) == []


def test_every_notification_is_written_in_swedish() -> None:
    texts = {GREETING, FOOTER, *WEEKDAYS, *DEADLINE_LABELS.values()}
    for template in TEMPLATES.values():
        texts.add(template.subject_en)
        texts.update(template.lines)
    assert _untranslated(texts) == []


@pytest.mark.parametrize("pattern", REASON_PATTERNS)
def test_each_reason_pattern_is_translated(pattern: str) -> None:
    assert gettext("sv", pattern) != pattern


def test_a_workflow_reason_is_translated_with_its_codes() -> None:
    reason = (
        "a meeting outcome can be recorded only in stage joint_meeting; "
        "the case is in stage planning"
    )
    assert translate_reason("sv", reason) == (
        "Ett mötes resultat kan registreras bara i steget Gemensamt möte; "
        "ärendet är i steget Planering"
    )
    assert translate_reason("sv", "something nobody translated") == "something nobody translated"


@pytest.mark.parametrize(
    ("choice", "accept", "expected"),
    [
        (None, None, "sv"),
        (None, "de-DE,de;q=0.9", "sv"),
        (None, "en-GB,en;q=0.8", "en"),
        (None, "de;q=1, en;q=0.5, sv;q=0.9", "sv"),
        ("en", "sv-SE", "en"),
        ("xx", "en", "en"),
        (None, "nb-NO", "sv"),
    ],
)
def test_the_language_follows_the_choice_then_accept_language_then_swedish(
    choice: str | None, accept: str | None, expected: str
) -> None:
    assert negotiate(choice, accept) == expected
