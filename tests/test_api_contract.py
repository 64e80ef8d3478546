"""What every answer of the API carries, and what its OpenAPI schema promises."""

from __future__ import annotations

import uuid

import httpx

from api.app import create_app
from core.settings import Settings


async def test_every_answer_forbids_caching_and_sniffing(
    api: httpx.AsyncClient, coordinator_headers: dict[str, str]
) -> None:
    answers = [
        await api.get("/healthz"),
        await api.get("/api/v1/cases", headers=coordinator_headers),
        await api.get(f"/api/v1/cases/{uuid.uuid4()}", headers=coordinator_headers),
        await api.get("/api/v1/cases"),
        await api.get("/api/v1/cases?limit=-1", headers=coordinator_headers),
        await api.post("/api/v1/cases", content=b"x" * 2_000_000),
        await api.options("/api/v1/cases"),
    ]

    assert [a.status_code for a in answers] == [200, 200, 404, 401, 422, 413, 204]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_options_names_every_method_of_the_path_and_a_wrong_method_is_405_with_allow(
    api: httpx.AsyncClient,
) -> None:
    options = await api.options("/api/v1/cases")
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, OPTIONS, POST"

    action = await api.options(f"/api/v1/cases/{uuid.uuid4()}/close-case")
    assert (action.status_code, action.headers["allow"]) == (204, "OPTIONS, POST")

    wrong = await api.delete("/api/v1/cases")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, OPTIONS, POST"
    assert wrong.json() == {"detail": "Method Not Allowed"}
    assert (await api.options("/no/such/path")).status_code == 404


def test_the_schema_documents_the_real_error_bodies_and_statuses(settings: Settings) -> None:
    schema = create_app(settings).openapi()
    components = schema["components"]["schemas"]
    assert "HTTPValidationError" not in components
    assert components["ValidationProblem"]["properties"]["detail"]["items"] == {
        "$ref": "#/components/schemas/FieldError"
    }
    assert set(components["FieldError"]["required"]) == {"field", "reason"}

    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]
    for path, method, operation in operations:
        responses = operation["responses"]
        if operation.get("parameters") or operation.get("requestBody"):
            assert responses["422"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ValidationProblem"
            }, (method, path)
        if operation.get("security"):
            assert {"401", "403", "429"} <= set(responses), (method, path)
            assert "Retry-After" in responses["429"]["headers"]
        if "{" in path:
            assert "404" in responses, (method, path)
        if operation.get("requestBody"):
            assert "413" in responses, (method, path)
    assert "400" in schema["paths"]["/codec/decode"]["post"]["responses"]
    assert "429" in schema["paths"]["/codec/session"]["post"]["responses"]


async def test_a_real_422_has_the_documented_shape(
    api: httpx.AsyncClient, coordinator_headers: dict[str, str]
) -> None:
    answer = await api.post(
        "/api/v1/cases",
        json={"employee_ref": "19811218-9875", "unit_code": "?", "trigger": "nope"},
        headers=coordinator_headers,
    )

    assert answer.status_code == 422
    problems = answer.json()["detail"]
    assert problems and all(set(p) == {"field", "reason"} for p in problems)


async def test_an_unexpected_error_is_a_json_500_that_tells_nothing_and_is_not_cached(
    settings: Settings,
) -> None:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("CANARY 19811218-9876 leaked in a message")

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://rehabflow.test",
        ) as http,
    ):
        answer = await http.get("/boom")

    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error"}
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
