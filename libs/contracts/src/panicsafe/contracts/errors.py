"""The RPC reply envelope and the stable error codes every service answers with."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ErrorCode(StrEnum):
    """Stable error codes: clients branch on these, never on messages."""

    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    INVALID = "invalid"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    UNAUTHENTICATED = "unauthenticated"
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"


class FieldError(BaseModel):
    """One field that failed validation, by its dotted path."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """What went wrong, in terms a person can act on."""

    code: ErrorCode
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class ErrorReply(BaseModel):
    """`{"ok": false, "error": {...}}`."""

    ok: bool = False
    error: ErrorBody


class OkReply(BaseModel):
    """`{"ok": true, "data": {...}}`; `data` is the endpoint's reply model, dumped."""

    ok: bool = True
    data: dict[str, Any] | list[Any] | None = None
