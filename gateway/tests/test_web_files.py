"""The web client's files over HTTP: pre-compressed copies by Accept-Encoding, the plain file otherwise.

The build (`npm run --prefix web build`) writes `x.br` and `x.gz` beside each text file of web/dist;
the gateway sends them as they are, with Content-Encoding and Vary, and keeps its cache headers.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import brotli
import httpx
import pytest
from gwclient import GatewayUnderTest

from panicsafe.gateway.settings import WEB_DIST

DECODE = {"br": brotli.decompress, "gzip": gzip.decompress}


@pytest.fixture(scope="module")
def built() -> Path:
    if not (WEB_DIST / "index.html.br").is_file():
        pytest.fail("web/dist has no pre-compressed copies: run `npm run --prefix web build` (scripts/setup.sh does)")
    return WEB_DIST


async def raw_get(client: httpx.AsyncClient, path: str, accept_encoding: str | None) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (httpx would decode a Content-Encoding by itself)."""
    request = client.build_request("GET", path)
    request.headers.pop("accept-encoding", None)  # httpx's own default
    if accept_encoding is not None:
        request.headers["Accept-Encoding"] = accept_encoding
    response = await client.send(request, stream=True)
    try:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    return response, body


def script_of(index: str) -> str:
    match = re.search(r'src="(/assets/[^"]+\.js)"', index)
    assert match, index
    return match.group(1)


@pytest.mark.parametrize(("accept", "encoding"), [("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br", "br")])
async def test_a_browser_that_accepts_it_gets_the_compressed_copy(
    gateway: GatewayUnderTest, built: Path, accept: str, encoding: str
) -> None:
    index = (built / "index.html").read_bytes()
    async with gateway.client() as client:
        for path, plain, cache in (
            ("/", index, "no-cache"),
            (script_of(index.decode()), (built / script_of(index.decode()).lstrip("/")).read_bytes(), "immutable"),
        ):
            response, body = await raw_get(client, path, accept)
            assert response.status_code == 200, path
            assert response.headers["content-encoding"] == encoding, path
            assert response.headers["vary"].lower() == "accept-encoding"
            assert cache in response.headers["cache-control"]
            assert int(response.headers["content-length"]) == len(body) < len(plain)
            assert DECODE[encoding](body) == plain, path
            media = "text/html" if path == "/" else "javascript"
            assert media in response.headers["content-type"]


async def test_without_accept_encoding_the_plain_file(gateway: GatewayUnderTest, built: Path) -> None:
    index = (built / "index.html").read_bytes()
    script = script_of(index.decode())
    async with gateway.client() as client:
        for path, plain in (("/", index), (script, (built / script.lstrip("/")).read_bytes())):
            for accept in (None, "identity", "br;q=0, gzip;q=0"):
                response, body = await raw_get(client, path, accept)
                assert response.status_code == 200
                assert "content-encoding" not in response.headers, (path, accept)
                assert response.headers["vary"].lower() == "accept-encoding"
                assert body == plain


async def test_each_copy_is_revalidated_by_its_own_etag(gateway: GatewayUnderTest, built: Path) -> None:
    async with gateway.client() as client:
        brotli_copy, _ = await raw_get(client, "/", "br")
        plain, _ = await raw_get(client, "/", None)
        assert brotli_copy.headers["etag"] != plain.headers["etag"]
        headers = {"Accept-Encoding": "br", "If-None-Match": brotli_copy.headers["etag"]}
        again = await client.get("/", headers=headers)
        assert again.status_code == 304
        assert again.headers["vary"].lower() == "accept-encoding"
        assert again.headers["cache-control"] == "no-cache"
