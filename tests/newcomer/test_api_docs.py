"""``/docs`` works offline: the page and every file it loads come from Cairn (issue 15,
point 17)."""

from __future__ import annotations

import re

import httpx
import pytest

from cairn.api.app import create_app
from cairn.services.app import App


@pytest.mark.anyio
async def test_swagger_ui_loads_only_files_cairn_serves(app: App) -> None:
    api = create_app(app)
    async with (
        api.router.lifespan_context(api),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://cairn.test"
        ) as client,
    ):
        page = await client.get("/docs")
        assert page.status_code == 200
        loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert loaded, page.text
        assert any(url.endswith("swagger-ui-bundle.js") for url in loaded)
        for url in loaded:
            assert url.startswith("/"), f"{url} is not served by Cairn"
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 500, url
        assert "url: '/openapi.json'" in page.text or '"/openapi.json"' in page.text
        assert (await client.get("/docs/assets/index.html")).status_code == 404
