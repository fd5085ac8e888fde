"""RPC models of the gateway (`rpc.gateway.<operation>`)."""

from __future__ import annotations

from pydantic import BaseModel


class BootstrapDemoRequest(BaseModel):
    """Development only: create the demo tenant and its administrator's invitation."""


class BootstrapDemoReply(BaseModel):
    tenant_id: str
    tenant_name: str
    admin_login: str
    enrolment_link: str
