"""Cross-tenant lookups through narrow functions of the owner; no setting widens row-level security.

Revision ID: 0007
Revises: 0006

Until now the runtime role could widen what it saw by itself: `app.identity = 'lookup'` opened every
tenant's accounts, sessions, refresh tokens, passkeys, recovery codes, invitations and challenges
(read and write), `app.region` every sharing tenant's crises and establishments, and
`crisis_overview(tenant, crisis)` scoped itself to whichever tenant it was given. Those policies go:
for the runtime role, a row is visible only inside its tenant's transaction (`app.tenant_id`).

What the identity flows must find before they know the tenant is now answered by `SECURITY DEFINER`
functions, owned by `<schema>_owner` (which the runtime role cannot become), search path pinned,
callable by the runtime role alone. Each does one lookup keyed by what the caller holds:

- `login_account(login)`: the active account of a login, with what the password step needs;
- `login_taken(login)`: whether an account or an open invitation has that login (logins are global);
- `invitation_tenant(token hash)`, `challenge_tenant(id)`, `refresh_token_tenant(token hash)`,
  `passkey_tenant(credential id)`: the tenant of an open invitation, of a live challenge, of a
  refresh token, of an active account's passkey. The flow then scopes its transaction to that
  tenant and goes on under row-level security as any tenant transaction does;
- `new_passkey_login_challenge(id, challenge, expiry)`, `take_passkey_login_challenge(id)`: the
  challenge of a passkey-only login, which belongs to no tenant until the passkey answers it,
  created and then spent (once);
- `regional_indicators(region, now)`: the counts a regional supervisor sees, computed in one
  statement, categories and counts only (no name, title or id leaves the function).

Forced row-level security binds the owner too: policies `*_definer_*`, for the owner alone, let the
functions read across tenants (and write the tenantless passkey-login challenges, nothing else).

`crisis_overview(crisis)` replaces `crisis_overview(tenant, crisis)`: it reads the crisis of the
tenant in scope, with the caller's rights (not a definer: the owner's policies would show it every
tenant), and sets nothing.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

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
# Tables the definer functions read across tenants (their owner's policy).
DEFINER_READS = ["users", "passkeys", "invitations", "refresh_tokens", "auth_challenges", "tenants", *REGIONAL_TABLES]

# name(argument types), definition; every one `SECURITY DEFINER SET search_path = <schema>, pg_temp`.
DEFINERS = {
    "login_account(text)": """
        RETURNS TABLE (id uuid, tenant_id uuid, password_hash text, display_name text, totp_enabled boolean,
                       passkeys bigint)
        LANGUAGE sql STABLE AS $$
            SELECT u.id, u.tenant_id, u.password_hash, u.display_name, u.totp_enabled,
                   (SELECT count(*) FROM passkeys p WHERE p.user_id = u.id)
            FROM users u WHERE u.login = $1 AND u.status = 'active'
        $$""",
    "login_taken(text)": """
        RETURNS boolean LANGUAGE sql STABLE AS $$
            SELECT EXISTS (SELECT 1 FROM users u WHERE u.login = $1)
                OR EXISTS (SELECT 1 FROM invitations i WHERE i.login = $1 AND i.used_at IS NULL AND i.expires_at > now())
        $$""",
    "invitation_tenant(bytea)": """
        RETURNS uuid LANGUAGE sql STABLE AS $$
            SELECT i.tenant_id FROM invitations i WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > now()
        $$""",
    "challenge_tenant(uuid)": """
        RETURNS uuid LANGUAGE sql STABLE AS $$
            SELECT c.tenant_id FROM auth_challenges c WHERE c.id = $1 AND c.used_at IS NULL AND c.expires_at > now()
        $$""",
    "refresh_token_tenant(bytea)": """
        RETURNS uuid LANGUAGE sql STABLE AS $$
            SELECT r.tenant_id FROM refresh_tokens r WHERE r.token_hash = $1
        $$""",
    "passkey_tenant(bytea)": """
        RETURNS uuid LANGUAGE sql STABLE AS $$
            SELECT p.tenant_id FROM passkeys p JOIN users u ON u.id = p.user_id
            WHERE p.credential_id = $1 AND u.status = 'active'
        $$""",
    "new_passkey_login_challenge(uuid, bytea, timestamptz)": """
        RETURNS void LANGUAGE sql AS $$
            INSERT INTO auth_challenges (id, purpose, challenge, expires_at) VALUES ($1, 'passkey_login', $2, $3)
        $$""",
    "take_passkey_login_challenge(uuid)": """
        RETURNS TABLE (id uuid, purpose text, user_id uuid, challenge bytea) LANGUAGE sql AS $$
            UPDATE auth_challenges c SET used_at = now()
            WHERE c.id = $1 AND c.purpose = 'passkey_login' AND c.tenant_id IS NULL AND c.used_at IS NULL AND c.expires_at > now()
            RETURNING c.id, c.purpose, c.user_id, c.challenge
        $$""",
    # The queries gateway.store.regional ran under `app.region`, in one statement (one snapshot).
    "regional_indicators(text, timestamptz)": """
        RETURNS TABLE (participating bigint, establishments_by_type json, crises_by_status json,
                       crises_by_severity json, crises_by_mode json, crises_by_establishment_type json,
                       open_crisis_hours float8[])
        LANGUAGE sql STABLE AS $$
            WITH shared AS (SELECT t.id FROM tenants t WHERE t.share_with_region AND t.region = $1),
            shared_crises AS (
                SELECT c.id, c.tenant_id, c.status, c.severity, c.mode, c.t0 FROM crises c
                WHERE c.tenant_id IN (SELECT s.id FROM shared s)
            ),
            real_crises AS (SELECT * FROM shared_crises c WHERE c.mode = 'real')
            SELECT
                (SELECT count(*) FROM shared),
                (SELECT coalesce(json_object_agg(x.key, x.n), '{}') FROM (
                    SELECT e.type AS key, count(*) AS n FROM establishments e
                    WHERE e.tenant_id IN (SELECT s.id FROM shared s) GROUP BY e.type) x),
                (SELECT coalesce(json_object_agg(x.key, x.n), '{}') FROM (
                    SELECT c.status AS key, count(*) AS n FROM real_crises c GROUP BY c.status) x),
                (SELECT coalesce(json_object_agg(x.key, x.n), '{}') FROM (
                    SELECT c.severity AS key, count(*) AS n FROM real_crises c GROUP BY c.severity) x),
                (SELECT coalesce(json_object_agg(x.key, x.n), '{}') FROM (
                    SELECT c.mode AS key, count(*) AS n FROM shared_crises c GROUP BY c.mode) x),
                (SELECT coalesce(json_object_agg(x.key, x.n), '{}') FROM (
                    SELECT e.type AS key, count(DISTINCT ce.crisis_id) AS n FROM crisis_establishments ce
                    JOIN establishments e ON e.id = ce.establishment_id AND e.tenant_id = ce.tenant_id
                    JOIN real_crises c ON c.id = ce.crisis_id AND c.tenant_id = ce.tenant_id
                    GROUP BY e.type) x),
                (SELECT coalesce(array_agg(extract(epoch FROM ($2 - c.t0))::float8 / 3600.0), '{}')
                 FROM real_crises c WHERE c.status <> 'closed')
        $$""",
}

CRISIS_OVERVIEW = """
CREATE FUNCTION crisis_overview(p_crisis uuid)
RETURNS TABLE (id uuid, title text, mode text, status text, severity text, t0 timestamptz,
               declared_at timestamptz, closed_at timestamptz,
               cells json, members json, establishments json)
LANGUAGE sql STABLE SET search_path = {schema}, pg_temp AS $$
    SELECT c.id, c.title, c.mode, c.status, c.severity, c.t0, c.declared_at, c.closed_at,
        (SELECT coalesce(json_agg(json_build_object('id', x.id, 'kind', x.kind, 'name', x.name)
                                  ORDER BY x.created_at, x.name), '[]')
         FROM cells x WHERE x.crisis_id = c.id),
        (SELECT coalesce(json_agg(json_build_object(
                    'user_id', m.user_id, 'role', m.role, 'function', m.function,
                    'display_name', u.display_name,
                    'cells', ARRAY(SELECT cm.cell_id::text FROM cell_members cm
                                   WHERE cm.crisis_id = m.crisis_id AND cm.user_id = m.user_id))
                  ORDER BY u.display_name), '[]')
         FROM crisis_members m JOIN users u ON u.id = m.user_id WHERE m.crisis_id = c.id),
        (SELECT coalesce(json_agg(json_build_object('id', e.id, 'name', e.name, 'type', e.type)
                                  ORDER BY e.name), '[]')
         FROM crisis_establishments ce JOIN establishments e ON e.id = ce.establishment_id
         WHERE ce.crisis_id = c.id)
    FROM crises c WHERE c.id = p_crisis
$$"""


def upgrade() -> None:
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one()
    owner, app = f"{schema}_owner", f"{schema}_app"

    # No setting but the tenant opens rows to the runtime role.
    for table in IDENTITY_TABLES:
        op.execute(f"DROP POLICY {table}_identity_lookup ON {table}")
    op.execute("DROP POLICY tenants_identity ON tenants")
    for table in REGIONAL_TABLES:
        op.execute(f"DROP POLICY {table}_regional_read ON {table}")
    op.execute("DROP POLICY tenants_regional ON tenants")

    # The definer functions' way across tenants: their owner's, read only but for the challenges of
    # passkey-only logins, which belong to no tenant.
    for table in DEFINER_READS:
        op.execute(f"CREATE POLICY {table}_definer_read ON {table} FOR SELECT TO {owner} USING (true)")
    tenantless = "tenant_id IS NULL AND user_id IS NULL AND purpose = 'passkey_login'"
    op.execute(
        f"CREATE POLICY auth_challenges_definer_add ON auth_challenges FOR INSERT TO {owner} WITH CHECK ({tenantless})"
    )
    op.execute(
        f"CREATE POLICY auth_challenges_definer_spend ON auth_challenges FOR UPDATE TO {owner} "
        f"USING ({tenantless}) WITH CHECK ({tenantless})"
    )

    for signature, body in DEFINERS.items():
        op.execute(f"CREATE FUNCTION {signature} {body}")
        op.execute(f"ALTER FUNCTION {signature} SECURITY DEFINER SET search_path = {schema}, pg_temp")
    op.execute("DROP FUNCTION crisis_overview(uuid, uuid)")
    op.execute(CRISIS_OVERVIEW.format(schema=schema))

    # Only the runtime role calls them (the trigger function of 0004 too: no one else needs it).
    for signature in [*DEFINERS, "crisis_overview(uuid)", "bump_authz_version()"]:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {app}")
