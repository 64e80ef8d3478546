"""An organisation's licensed wording, loaded as data: shown to forms, scored the same way."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import EmbeddedIssuer
from api.routers.instruments import load_registry
from core.settings import ScreeningSettings, Settings
from models.api import Role
from models.instruments import INSTRUMENTS, KEDS, VIOLENCE_EXPOSURE, InvalidInstrument
from store.schema import Case, Employee
from tests.conftest import bearer


def licensed(tmp_path: Path) -> Path:
    """A licensed definition of the violence set (same id and version, other wording) and a
    second KEDS version that an organisation added."""
    directory = tmp_path / "instruments"
    directory.mkdir()
    wording = json.loads(VIOLENCE_EXPOSURE.model_dump_json())
    wording["title"] = "Frågor om våldsutsatthet (licensierad lydelse)"
    for number, item in enumerate(wording["items"], start=1):
        item["label"] = f"Officiell fråga {number}"
    (directory / "violence_exposure.json").write_text(json.dumps(wording), encoding="utf-8")
    keds_v2 = json.loads(KEDS.model_dump_json()) | {"version": 2}
    (directory / "keds_v2.json").write_text(json.dumps(keds_v2), encoding="utf-8")
    return directory


async def test_forms_get_the_licensed_wording_and_answers_to_it_are_scored(
    settings: Settings,
    time_skipping_env: WorkflowEnvironment,
    issuer: EmbeddedIssuer,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    case_without_workflow = uuid.uuid4()
    async with sessionmaker.begin() as session:
        employee_row = Employee(pseudonym=uuid.uuid4(), unit_code=unit_code)
        session.add(employee_row)
        await session.flush()
        session.add(
            Case(
                id=case_without_workflow,
                workflow_id=f"case-{case_without_workflow}",
                employee_pseudonym=employee_row.pseudonym,
                unit_code=unit_code,
                trigger="manager_concern",
                stage="screening",
                opened_at=datetime.now(UTC),
            )
        )
    configured = settings.model_copy(
        update={"screening": ScreeningSettings(instruments_dir=licensed(tmp_path))}
    )
    app = create_app(configured, temporal_client=time_skipping_env.client)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://rehabflow.test"
        ) as api:
            employee = bearer(
                issuer.mint(Role.EMPLOYEE, subject="employee-1", employee_pseudonym=uuid.uuid4())
            )
            response = await api.get("/api/v1/instruments", headers=employee)
            assert response.status_code == 200, response.text
            shown = {(i["id"], i["version"]): i for i in response.json()}
            assert set(shown) == set(INSTRUMENTS) | {("keds", 2)}
            violence = shown[("violence_exposure", 1)]
            assert [item["label"] for item in violence["items"]][:2] == [
                "Officiell fråga 1",
                "Officiell fråga 2",
            ]
            assert shown[("keds", 1)]["items"][0]["label"] == KEDS.items[0].label
            admin = bearer(issuer.mint(Role.ADMIN, subject="admin-1"))
            assert (await api.get("/api/v1/instruments", headers=admin)).status_code == 403
            # The added version is scored with the loaded registry: a well-formed screening
            # gets past scoring to the case's workflow (absent here: 409), an unknown version
            # does not (422).
            coordinator = bearer(issuer.mint(Role.COORDINATOR, units=[unit_code]))
            path = f"/api/v1/cases/{case_without_workflow}/record-screening-result"
            for version, status in ((2, 409), (3, 422)):
                body = {
                    "answers": [
                        {
                            "instrument_id": "keds",
                            "instrument_version": version,
                            "answers": {item.id: 0 for item in KEDS.items},
                        },
                        {
                            "instrument_id": "violence_exposure",
                            "instrument_version": 1,
                            "answers": {item.id: 0 for item in VIOLENCE_EXPOSURE.items},
                        },
                    ]
                }
                answered = await api.post(path, json=body, headers=coordinator)
                assert answered.status_code == status, answered.text
            assert answered.json()["detail"] == [
                {
                    "field": "answers.0.instrument_version",
                    "reason": "is not a known version of the instrument",
                }
            ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "bands",
            "violence_exposure version 1 differs from the known definition in more than wording",
        ),
        ("broken", "violence_exposure.json: not valid JSON"),
    ],
)
def test_a_definition_that_would_change_scoring_or_cannot_be_read_stops_the_start(
    tmp_path: Path, change: str, message: str
) -> None:
    directory = licensed(tmp_path)
    path = directory / "violence_exposure.json"
    if change == "bands":
        definition = json.loads(path.read_text(encoding="utf-8"))
        definition["protected"] = False
        definition["scoring"]["method"] = "sum"
        definition["bands"] = [{"name": "any", "min": 0, "max": 5, "risk_level": "low"}]
        path.write_text(json.dumps(definition), encoding="utf-8")
    else:
        path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInstrument, match=message):
        load_registry(directory)
    with pytest.raises(InvalidInstrument, match="does not exist"):
        load_registry(tmp_path / "missing")
