"""Tenancy (tenants, establishments, crises, cells, memberships) and identity (users, factors, sessions).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from panicsafe.core.db.rls import tenant_rls_statements

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
# Identity flows look a user up before knowing the tenant (login, invitation, refresh, passkey):
# those transactions, and only those, set app.identity = 'lookup'.
IDENTITY_LOOKUP = "current_setting('app.identity', true) = 'lookup'"
# Regional supervisors read aggregates of the tenants that opted in to share with their region.
REGION_SHARED = (
    "tenant_id IN (SELECT t.id FROM tenants t WHERE t.share_with_region "
    "AND t.region = NULLIF(current_setting('app.region', true), ''))"
)

TABLES = [
    """CREATE TABLE tenants (
        id uuid PRIMARY KEY,
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        kind text NOT NULL CHECK (kind IN ('ght', 'group', 'association', 'authority', 'other')),
        region text NOT NULL CHECK (region ~ '^[A-Z0-9-]{2,12}$'),
        share_with_region boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    """CREATE TABLE establishments (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        type text NOT NULL CHECK (type IN ('hospital', 'clinic', 'nursing_home', 'laboratory',
                                           'medico_social', 'city_medicine', 'other')),
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, name)
    )""",
    """CREATE TABLE users (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        login text NOT NULL CHECK (login ~ '^[a-z0-9][a-z0-9._-]{2,63}$'),
        display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 120),
        tenant_role text NOT NULL CHECK (tenant_role IN ('admin', 'member')),
        status text NOT NULL DEFAULT 'enrolling' CHECK (status IN ('enrolling', 'active', 'disabled')),
        password_hash text,
        totp_secret bytea,
        totp_enabled boolean NOT NULL DEFAULT false,
        totp_last_step bigint,
        mfa_enrolled_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (login)
    )""",
    """CREATE TABLE regional_supervisors (
        user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        region text NOT NULL CHECK (region ~ '^[A-Z0-9-]{2,12}$')
    )""",
    """CREATE TABLE passkeys (
        credential_id bytea PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        public_key bytea NOT NULL,
        sign_count bigint NOT NULL DEFAULT 0,
        transports text[] NOT NULL DEFAULT '{}',
        name text NOT NULL DEFAULT 'Clé d''accès',
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz
    )""",
    """CREATE TABLE recovery_codes (
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        code_hash text NOT NULL,
        used_at timestamptz,
        PRIMARY KEY (user_id, code_hash)
    )""",
    """CREATE TABLE invitations (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        token_hash bytea NOT NULL UNIQUE,
        login text NOT NULL,
        display_name text NOT NULL,
        tenant_role text NOT NULL CHECK (tenant_role IN ('admin', 'member')),
        crisis_id uuid,
        crisis_role text,
        crisis_function text,
        cell_ids uuid[] NOT NULL DEFAULT '{}',
        supervisor_region text,
        created_by uuid REFERENCES users (id),
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        user_id uuid REFERENCES users (id)
    )""",
    """CREATE TABLE sessions (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        created_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        mfa_at timestamptz,
        revoked_at timestamptz,
        revoked_reason text,
        address text,
        user_agent text
    )""",
    "CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL",
    """CREATE TABLE refresh_tokens (
        token_hash bytea PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        issued_at timestamptz NOT NULL DEFAULT now(),
        used_at timestamptz
    )""",
    """CREATE TABLE auth_challenges (
        id uuid PRIMARY KEY,
        purpose text NOT NULL CHECK (purpose IN ('second_factor', 'passkey_login', 'passkey_register',
                                                 'enrolment')),
        user_id uuid REFERENCES users (id) ON DELETE CASCADE,
        tenant_id uuid REFERENCES tenants (id),
        challenge bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz
    )""",
    """CREATE TABLE auth_throttle (
        key text PRIMARY KEY,
        failures integer NOT NULL DEFAULT 0,
        window_start timestamptz NOT NULL DEFAULT now(),
        locked_until timestamptz
    )""",
    """CREATE TABLE crises (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
        mode text NOT NULL CHECK (mode IN ('real', 'exercise')),
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'recovery', 'closed')),
        severity text NOT NULL CHECK (severity IN ('minor', 'significant', 'major', 'critical')),
        t0 timestamptz NOT NULL,
        declared_at timestamptz NOT NULL DEFAULT now(),
        declared_by uuid NOT NULL REFERENCES users (id),
        closed_at timestamptz
    )""",
    """CREATE TABLE crisis_establishments (
        crisis_id uuid NOT NULL REFERENCES crises (id) ON DELETE CASCADE,
        establishment_id uuid NOT NULL REFERENCES establishments (id),
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        PRIMARY KEY (crisis_id, establishment_id)
    )""",
    """CREATE TABLE cells (
        id uuid PRIMARY KEY,
        crisis_id uuid NOT NULL REFERENCES crises (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        kind text NOT NULL CHECK (kind IN ('decision', 'it_operations', 'communication',
                                           'medical_continuity', 'legal_dpo', 'custom')),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (crisis_id, name)
    )""",
    """CREATE TABLE crisis_members (
        crisis_id uuid NOT NULL REFERENCES crises (id) ON DELETE CASCADE,
        user_id uuid NOT NULL REFERENCES users (id),
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        role text NOT NULL CHECK (role IN ('director', 'coordinator', 'member', 'patients_representative',
                                           'observer', 'external_liaison')),
        function text CHECK (function IS NULL OR length(function) <= 80),
        added_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (crisis_id, user_id)
    )""",
    "CREATE INDEX crisis_members_user ON crisis_members (user_id)",
    """CREATE TABLE cell_members (
        cell_id uuid NOT NULL REFERENCES cells (id) ON DELETE CASCADE,
        user_id uuid NOT NULL REFERENCES users (id),
        crisis_id uuid NOT NULL REFERENCES crises (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants (id),
        PRIMARY KEY (cell_id, user_id),
        FOREIGN KEY (crisis_id, user_id) REFERENCES crisis_members (crisis_id, user_id) ON DELETE CASCADE
    )""",
]

TENANT_TABLES = [
    "establishments",
    "crises",
    "crisis_establishments",
    "cells",
    "crisis_members",
    "cell_members",
]
IDENTITY_TABLES = [
    "users",
    "regional_supervisors",
    "passkeys",
    "recovery_codes",
    "invitations",
    "sessions",
    "refresh_tokens",
    "auth_challenges",
]
REGIONAL_TABLES = ["establishments", "crises", "crisis_establishments"]


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    for table in TENANT_TABLES + IDENTITY_TABLES:
        for statement in tenant_rls_statements(table):
            op.execute(statement)
    for table in IDENTITY_TABLES:
        op.execute(
            f"CREATE POLICY {table}_identity_lookup ON {table} USING ({IDENTITY_LOOKUP}) WITH CHECK ({IDENTITY_LOOKUP})"
        )
    for table in REGIONAL_TABLES:
        op.execute(f"CREATE POLICY {table}_regional_read ON {table} FOR SELECT USING ({REGION_SHARED})")
    # auth_challenges may exist before a tenant is known (passkey login): their tenant is nullable.
    op.execute("DROP POLICY auth_challenges_tenant_isolation ON auth_challenges")
    op.execute(
        f"CREATE POLICY auth_challenges_tenant_isolation ON auth_challenges "
        f"USING (tenant_id = {TENANT}) WITH CHECK (tenant_id = {TENANT})"
    )
    # tenants: own row in a tenant transaction, any row in identity lookups, shared rows in a region.
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenants FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenants_own ON tenants USING (id = {TENANT}) WITH CHECK (id = {TENANT})")
    op.execute(f"CREATE POLICY tenants_identity ON tenants USING ({IDENTITY_LOOKUP}) WITH CHECK ({IDENTITY_LOOKUP})")
    op.execute(
        "CREATE POLICY tenants_regional ON tenants FOR SELECT USING (share_with_region AND "
        "region = NULLIF(current_setting('app.region', true), ''))"
    )
