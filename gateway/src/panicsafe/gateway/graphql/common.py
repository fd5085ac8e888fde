"""What the gateway's GraphQL modules share: the resolver info, argument checks, contract validation,
and the contract enum that more than one module exposes.

Each domain module (tenancy, crises, invitations, identity, logbook, chat) imports what it needs from
here, never from a sibling for a side effect.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

import strawberry
from pydantic import BaseModel, ValidationError
from strawberry.types import Info

from panicsafe.contracts.errors import ErrorCode
from panicsafe.contracts.events import LogbookKind
from panicsafe.core.errors import ServiceError, invalid
from panicsafe.gateway.domain.policy import Principal
from panicsafe.gateway.graphql_context import GatewayContext

__all__ = ["GInfo", "LogbookKind", "principal_of", "text_arg", "uuid_arg", "validated"]

GInfo = Info[GatewayContext, None]
M = TypeVar("M", bound=BaseModel)

# The main courante's kinds, as entries (logbook) and as marked messages (chat) carry them: registered
# once, here, so that both modules import the GraphQL enum from the same place.
strawberry.enum(LogbookKind, name="LogbookKind", description="Nature d'une entrée de la main courante.")


async def principal_of(info: GInfo) -> Principal:
    """The signed-in person (`unauthenticated` otherwise)."""
    return await info.context.require_principal()


def text_arg(value: str, field: str, *, max_len: int) -> str:
    """A trimmed text of 1 to `max_len` characters."""
    value = value.strip()
    if not value or len(value) > max_len:
        raise ServiceError(ErrorCode.INVALID, f"{field} : entre 1 et {max_len} caractères.")
    return value


def uuid_arg(value: str, field: str) -> str:
    """An id argument in its canonical form."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise invalid(f"{field} : identifiant invalide.") from exc


def validated(build: Callable[[], M]) -> M:
    """Contract validation errors become `invalid` with the fields at fault."""
    try:
        return build()
    except ValidationError as exc:
        raise ServiceError.from_validation(exc) from None
