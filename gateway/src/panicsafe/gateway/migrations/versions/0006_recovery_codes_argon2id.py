"""Recovery codes stored as salted Argon2id hashes; the bare SHA-256 digests of older codes wrapped.

Until now a code was stored as the bare SHA-256 of its normalised form: with no salt and a fast hash,
one guess could be tried against every stored code at once. New codes are hashed with Argon2id
(`identity.recovery.hash_recovery_code`). The codes already handed out were never stored, only their
digests, so each digest is hashed again with Argon2id and marked `sha256$...`
(`identity.recovery.wrap_legacy_digest`): every code a person holds keeps working, used codes stay
used, and no bare digest is left. Costs one Argon2id hash (~20 ms) per stored code, spread over the
machine's cores.

Revision ID: 0006
Revises: 0005
"""

import os
from concurrent.futures import ThreadPoolExecutor

from alembic import op
from sqlalchemy import text

from panicsafe.gateway.identity.recovery import wrap_legacy_digest

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BARE_DIGEST = "^[0-9a-f]{64}$"


def upgrade() -> None:
    bind = op.get_bind()
    # recovery_codes is under forced row-level security, its owner included: this transaction sees
    # every tenant's codes the way the identity flows do (transaction-local setting).
    bind.execute(text("SELECT set_config('app.identity', 'lookup', true)"))
    rows = bind.execute(
        text("SELECT user_id, code_hash FROM recovery_codes WHERE code_hash ~ :bare"), {"bare": BARE_DIGEST}
    ).all()
    if rows:
        # argon2-cffi releases the GIL while it hashes: threads use every core.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            wrapped = list(pool.map(wrap_legacy_digest, [row.code_hash for row in rows]))
        bind.execute(
            text("UPDATE recovery_codes SET code_hash = :new WHERE user_id = :user_id AND code_hash = :old"),
            [
                {"new": new, "user_id": row.user_id, "old": row.code_hash}
                for row, new in zip(rows, wrapped, strict=True)
            ],
        )
    bind.execute(text("SELECT set_config('app.identity', '', true)"))
