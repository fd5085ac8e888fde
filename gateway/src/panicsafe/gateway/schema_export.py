"""`python -m panicsafe.gateway.schema_export [FILE]`: the public GraphQL schema, in SDL.

The web client's types are generated from it (`web/schema.graphql`, then `npm run codegen`); a test
fails when the committed copy and the schema drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

from panicsafe.gateway.graphql.limits import graphql_extensions
from panicsafe.gateway.graphql.schema import build_schema


def schema_sdl() -> str:
    return build_schema(graphql_extensions(development=False)).as_str() + "\n"


def main(argv: list[str]) -> int:
    sdl = schema_sdl()
    if argv:
        Path(argv[0]).write_text(sdl)
    else:
        sys.stdout.write(sdl)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
