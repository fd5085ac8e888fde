"""The exception that crosses service boundaries with a stable code."""

from __future__ import annotations

from pydantic import ValidationError

from panicsafe.contracts.errors import ErrorBody, ErrorCode, FieldError


class ServiceError(Exception):
    """An error a caller can act on: a stable code, a message, optionally the fields at fault."""

    def __init__(self, code: ErrorCode, message: str, fields: list[FieldError] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = fields or []

    def body(self) -> ErrorBody:
        return ErrorBody(code=self.code, message=self.message, fields=self.fields)

    @classmethod
    def from_body(cls, body: ErrorBody) -> ServiceError:
        return cls(body.code, body.message, body.fields)

    @classmethod
    def from_validation(cls, error: ValidationError) -> ServiceError:
        fields = [
            FieldError(field=".".join(str(p) for p in item["loc"]) or "(body)", message=item["msg"])
            for item in error.errors()
        ]
        names = ", ".join(f.field for f in fields)
        return cls(ErrorCode.INVALID, f"invalid fields: {names}", fields)


def not_found(message: str) -> ServiceError:
    return ServiceError(ErrorCode.NOT_FOUND, message)


def forbidden(message: str = "not allowed") -> ServiceError:
    return ServiceError(ErrorCode.FORBIDDEN, message)


def invalid(message: str) -> ServiceError:
    return ServiceError(ErrorCode.INVALID, message)


def conflict(message: str) -> ServiceError:
    return ServiceError(ErrorCode.CONFLICT, message)


def unavailable(message: str) -> ServiceError:
    return ServiceError(ErrorCode.UNAVAILABLE, message)
