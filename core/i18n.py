"""Languages: gettext catalogs (Babel) for pages, notifications and error reasons.

Source strings are English; `core/locale/<lang>/LC_MESSAGES/messages.po` holds each
translation. The catalogs are compiled with Babel when they are first loaded, so a fresh
clone needs no build step and a `.po` edit can never disagree with a stale `.mo`.
Swedish is the default; the user's choice (a cookie) wins, then `Accept-Language`.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

Language = Literal["sv", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("sv", "en")
DEFAULT_LANGUAGE: Final[Language] = "sv"
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
DOMAIN: Final = "messages"
STOCKHOLM: Final = ZoneInfo("Europe/Stockholm")


@cache
def translations(language: Language) -> Translations:
    """The catalog of `language`, compiled in memory from its `.po` file."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def gettext(language: Language, message: str) -> str:
    return translations(language).gettext(message)


def as_language(value: str | None) -> Language | None:
    """A supported language code, from a cookie or a language tag like `sv-SE`."""
    if not value:
        return None
    primary = value.strip().split("-")[0].split("_")[0].lower()
    for language in LANGUAGES:
        if primary == language:
            return language
    if primary in ("nb", "nn", "no", "da"):  # Scandinavian readers read Swedish best
        return "sv"
    return None


def negotiate(choice: str | None, accept_language: str | None) -> Language:
    """The user's choice, then the best of `Accept-Language` by q-value, then Swedish."""
    chosen = as_language(choice)
    if chosen is not None:
        return chosen
    ranked: list[tuple[float, int, Language]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        language = as_language(tag)
        if language is not None and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


# Reasons the case workflow and the API give, with their variable parts; the catalog
# translates each pattern, and a value that is a code (a stage, a party) is translated too.
REASON_PATTERNS: Final[tuple[str, ...]] = (
    "{what} only in stage {allowed}; the case is in stage {stage}",
    "the joint meeting has not started yet; record its outcome after {time}",
    "the joint meeting has not started yet; a no-show is recorded after {time}",
    "consent for {party} is already {word}",
    "deadline {kind} is already met",
    "information may be requested from {party} only with the employee's consent; "
    "record the consent first",
)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
    )
    return re.compile(f"^{regex}$")


_COMPILED: Final = tuple((template, _pattern(template)) for template in REASON_PATTERNS)


def translate_reason(language: Language, reason: str) -> str:
    """A reason in `language`: from the catalog as it is, or by its pattern."""
    exact = gettext(language, reason)
    if exact != reason:
        return exact
    for template, pattern in _COMPILED:
        match = pattern.match(reason)
        if match is None:
            continue
        values = {name: _value(language, value) for name, value in match.groupdict().items()}
        return gettext(language, template).format(**values)
    return reason


def _value(language: Language, value: str) -> str:
    """A reason's variable part for people: codes translated, instants in Stockholm time."""
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return ", ".join(gettext(language, part.strip()) for part in value.split(","))
    if instant.tzinfo is None:
        return value
    return instant.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")


def requested_language(accept_language: str | None) -> Language:
    """The language of an API client's error reasons: the best of `Accept-Language` that is
    ours, else Swedish (DESIGN: Swedish is the default, English the alternative). Codes and
    field names stay English; a client built against English reasons sends `en`."""
    return negotiate(None, accept_language)
