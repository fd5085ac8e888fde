"""`append_entries` takes its batch as typed arrays again (the function of 0003).

Revision ID: 0006
Revises: 0005

0005 bound the batch as one JSON text to spare the driver its array encoding. Measured side by side
at 1,000 appends/s, the Python side gained about one percent of a core and PostgreSQL lost nine: its
JSON parser builds every string character by character (a sealed body travels as hundreds of hex
digits) and the function read the text four times, while typed arrays arrive in binary and are taken
as they are. The writer keeps encoding each entry before its batch forms; only the transport goes
back to arrays.
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON_SIGNATURE = "append_entries(uuid, uuid, text, bigint, bytea, timestamptz, json, uuid[], text[], bytea[], jsonb[])"


def _function_of_0003() -> str:
    """0003's definition, read from that migration (migrations never change once written)."""
    spec = importlib.util.spec_from_file_location("_logbook_0003", Path(__file__).with_name("0003_append_function.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.FUNCTION)


def upgrade() -> None:
    op.execute(f"DROP FUNCTION {JSON_SIGNATURE}")
    op.execute(_function_of_0003())
