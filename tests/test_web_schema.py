"""The web client's types come from the exported schema: the committed copy must be the schema."""

from __future__ import annotations

from pathlib import Path

from panicsafe.gateway.schema_export import schema_sdl


def test_committed_schema_is_current(repo_root: Path) -> None:
    committed = (repo_root / "web" / "schema.graphql").read_text()
    assert committed == schema_sdl(), (
        "web/schema.graphql is stale: run `uv run python -m panicsafe.gateway.schema_export web/schema.graphql` "
        "then `npm run --prefix web codegen`"
    )
