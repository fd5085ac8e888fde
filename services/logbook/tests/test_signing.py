"""The logbook's checkpoint signatures, made with its own OpenBao identity for as long as it runs."""

from __future__ import annotations

import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from panicsafe.core.devstack import DevStack
from panicsafe.logbook.signing import TransitSigner


async def test_signing_survives_a_token_revoked_behind_the_logbooks_back(stack: DevStack) -> None:
    session = stack.openbao.session("logbook")
    signer = TransitSigner(session)
    tenant = str(uuid.uuid4())
    try:
        first, version = await signer.sign(tenant, b"checkpoint 1")
        dead = session.token
        await session.run(session.client.auth.token.revoke_self)
        session.client.token = dead  # still held, no longer valid (revoked, or expired while asleep)

        second, _ = await signer.sign(tenant, b"checkpoint 2")
        assert session.logins == 2 and session.token != dead
        public = Ed25519PublicKey.from_public_bytes(await signer.public_key(tenant, version))
        public.verify(first, b"checkpoint 1")
        public.verify(second, b"checkpoint 2")
    finally:
        await signer.close()
