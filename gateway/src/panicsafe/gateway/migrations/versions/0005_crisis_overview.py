"""The crisis overview, in one statement that scopes itself to its tenant.

`crisis_overview(tenant, crisis)` returns the crisis with its cells, members and establishments, as
JSON lists in display order: the most frequent read of the crisis cell, answered in one round trip.
It sets the tenant of row-level security itself, as `Database.tenant` does, with `set_config(...,
true)`: outside a transaction, that lasts until the end of the caller's statement, so no transaction
needs opening and closing around it. Inside a transaction, the tenant in scope (if any) must be the
same one, and is left as it was.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """CREATE FUNCTION crisis_overview(tenant uuid, crisis uuid)
        RETURNS TABLE (id uuid, title text, mode text, status text, severity text, t0 timestamptz,
                       declared_at timestamptz, closed_at timestamptz,
                       cells json, members json, establishments json)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        DECLARE
            scope text := coalesce(current_setting('app.tenant_id', true), '');
        BEGIN
            IF scope NOT IN ('', tenant::text) THEN
                RAISE EXCEPTION 'crisis_overview: the transaction is scoped to another tenant';
            END IF;
            PERFORM set_config('app.tenant_id', tenant::text, true);
            RETURN QUERY
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
            FROM crises c WHERE c.id = crisis;
            PERFORM set_config('app.tenant_id', scope, true);
        END $$"""
    )
