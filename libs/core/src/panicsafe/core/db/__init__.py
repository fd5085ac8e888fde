"""PostgreSQL: one schema and two roles per service, row-level security by tenant, Alembic migrations."""

from panicsafe.core.db.database import Database, asyncpg_dsn
from panicsafe.core.db.provision import ServiceRoles, provision_service
from panicsafe.core.db.rls import enable_tenant_rls

__all__ = ["Database", "ServiceRoles", "asyncpg_dsn", "enable_tenant_rls", "provision_service"]
