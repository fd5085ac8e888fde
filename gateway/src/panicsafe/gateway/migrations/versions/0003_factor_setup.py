"""Challenges for adding factors to an existing account and for passkey re-authentication.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE auth_challenges DROP CONSTRAINT auth_challenges_purpose_check")
    op.execute(
        "ALTER TABLE auth_challenges ADD CONSTRAINT auth_challenges_purpose_check CHECK (purpose IN "
        "('second_factor', 'passkey_login', 'passkey_register', 'enrolment', 'totp_setup', 'passkey_setup', 'reauth'))"
    )
