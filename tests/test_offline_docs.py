"""/docs and /redoc load every asset from the API itself, so they work without internet."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from api.app import create_app
from core.settings import Settings


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs.extend(v for k, v in attrs if k in ("src", "href") and v)


@pytest.mark.parametrize(
    ("page", "needed"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}),
        ("/redoc", {"redoc.standalone.js"}),
    ],
)
async def test_docs_page_references_only_assets_the_api_serves(
    tmp_path: Path, page: str, needed: set[str]
) -> None:
    # No lifespan: the pages need neither Temporal nor PostgreSQL.
    app = create_app(Settings(data_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        response = await client.get(page)
        assert response.status_code == 200
        parser = _Refs()
        parser.feed(response.text)
        assert "http://" not in response.text.replace("http://api.test", "")
        assert "https://" not in response.text
        served = set()
        for ref in parser.refs:
            assert not urlsplit(ref).netloc, f"{ref} is not served by the API"
            asset = await client.get(ref)
            assert asset.status_code == 200, ref
            assert len(asset.content) > 1000, ref
            served.add(ref.rsplit("/", 1)[-1])
        assert needed <= served
        # The page loads the spec from the API too.
        assert "/openapi.json" in response.text
        assert (await client.get("/openapi.json")).status_code == 200
