"""The custom search attributes rehabflow registers in Temporal (never personal data)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

REHAB_STAGE = SearchAttributeKey.for_keyword("RehabStage")
REHAB_UNIT = SearchAttributeKey.for_keyword("RehabUnit")
REHAB_OVERDUE = SearchAttributeKey.for_bool("RehabOverdue")

# The key and the type name the dev server's `--search-attribute` flag expects.
ALL_SEARCH_ATTRIBUTES: dict[SearchAttributeKey, str] = {
    REHAB_STAGE: "Keyword",
    REHAB_UNIT: "Keyword",
    REHAB_OVERDUE: "Bool",
}


def dev_server_flags() -> list[str]:
    """`--search-attribute` flags for `temporal server start-dev`."""
    flags: list[str] = []
    for key, type_name in ALL_SEARCH_ATTRIBUTES.items():
        flags += ["--search-attribute", f"{key.name}={type_name}"]
    return flags
