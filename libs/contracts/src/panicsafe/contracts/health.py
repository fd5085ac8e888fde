"""`rpc.<service>.health`: the state of a service and of each server it depends on."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from panicsafe.contracts.declarations import Operation


class DependencyStatus(StrEnum):
    OK = "ok"
    DOWN = "down"


class HealthRequest(BaseModel):
    """Empty: health needs no actor and no argument."""


class DependencyHealth(BaseModel):
    name: str = Field(description="database, nats, s3, openbao, turn")
    status: DependencyStatus
    latency_ms: float | None = None
    detail: str | None = None


class HealthReply(BaseModel):
    service: str
    version: str
    instance: str
    status: DependencyStatus
    dependencies: list[DependencyHealth]


def health(service: str) -> Operation[HealthRequest, HealthReply]:
    """`rpc.<service>.health`: every service answers it (the runtime registers it, without a token)."""
    return Operation(service, "health", HealthRequest, HealthReply, "The service and its servers' state", public=True)
