"""The web client's files, sent pre-compressed: the build writes `x.br` and `x.gz` beside `x` once
(`web/scripts/compress.mjs`), and each request gets the copy its browser accepts, as it is on disk.

A copy is used only if it is at least as recent as its file (never a stale one from an earlier build);
every answer says `Vary: Accept-Encoding`, so that a cache keeps one copy per encoding, and each copy
has its own ETag (its own size and time).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from mimetypes import guess_type
from pathlib import Path
from typing import Final

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

# Preferred first: Brotli is smaller than gzip for the same text.
ENCODINGS: Final = (("br", ".br"), ("gzip", ".gz"))
IMMUTABLE: Final = "public, max-age=31536000, immutable"


def accepted_encodings(accept_encoding: str | None) -> list[str]:
    """The encodings of ours that an `Accept-Encoding` header allows, best first (q-values, `*`, `q=0`)."""
    if not accept_encoding:
        return []
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if name.strip():
            weights[name.strip().lower()] = weight
    ours = {name: weights.get(name, weights.get("*", 0.0)) for name, _ in ENCODINGS}
    order = [name for name, _ in ENCODINGS]
    return sorted((n for n, w in ours.items() if w > 0), key=lambda n: (-ours[n], order.index(n)))


def _copy(path: str, stat_result: os.stat_result, accept_encoding: str | None) -> tuple[str, str, os.stat_result]:
    """The pre-compressed copy of `path` to send (its path, encoding and stat), or the file itself."""
    suffixes = dict(ENCODINGS)
    for encoding in accepted_encodings(accept_encoding):
        candidate = path + suffixes[encoding]
        try:
            copy_stat = os.stat(candidate)
        except OSError:
            continue
        if copy_stat.st_mtime >= stat_result.st_mtime:
            return candidate, encoding, copy_stat
    return path, "", stat_result


def web_file_response(
    path: str | Path, request_headers: Headers, *, cache_control: str, stat_result: os.stat_result | None = None
) -> Response:
    """`path` as the request accepts it (Brotli, gzip or plain), or 304 when the browser has this copy."""
    path = str(path)
    stat_result = stat_result or os.stat(path)
    sent, encoding, sent_stat = _copy(path, stat_result, request_headers.get("accept-encoding"))
    headers = {"Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if encoding:
        headers["Content-Encoding"] = encoding
    media_type = guess_type(path)[0] or "application/octet-stream"
    response = FileResponse(sent, stat_result=sent_stat, media_type=media_type, headers=headers)
    if _not_modified(response.headers, request_headers):
        return NotModifiedResponse(response.headers)
    return response


def _not_modified(response_headers: Headers | dict[str, str], request_headers: Headers) -> bool:
    """The browser's copy is this one: its ETag matches, or (without an ETag to compare) its date is not older."""
    if if_none_match := request_headers.get("if-none-match"):
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or response_headers["etag"] in tags
    since = _http_date(request_headers.get("if-modified-since"))
    modified = _http_date(response_headers.get("last-modified"))
    return since is not None and modified is not None and since >= modified


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # "-0000": UTC, per RFC 5322


class WebFiles(StaticFiles):
    """A folder of the build (content-hashed assets: cached for good), each file sent pre-compressed."""

    def __init__(self, *, directory: Path, cache_control: str = IMMUTABLE) -> None:
        super().__init__(directory=directory)
        self.cache_control = cache_control

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        return web_file_response(
            os.fspath(full_path), Headers(scope=scope), cache_control=self.cache_control, stat_result=stat_result
        )
