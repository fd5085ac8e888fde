"""Alembic's environment for every service schema (see `panicsafe.core.db.migrations`)."""

from panicsafe.core.db.migrations import run_env

run_env()
