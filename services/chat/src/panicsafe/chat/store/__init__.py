"""SQL for the `chat` schema (the service's own; no other service reads it), one module per area.

Every function runs on a connection inside a tenant transaction (`Database.tenant`): row-level
security admits that tenant's rows only.
"""
