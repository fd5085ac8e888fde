"""The baseline of `bench/gateway.py`: a bare FastAPI app whose POST /graphql answers a fixed JSON body.

`python -m bench.gateway_baseline PORT BODY_FILE` serves it on 127.0.0.1:PORT with uvicorn configured
like the gateway's own server (the default asyncio loop, uvicorn's default HTTP parser, no access log).
The endpoint reads and decodes the request's JSON, as any GraphQL endpoint must, then returns the bytes
the gateway answered for the benchmarked query: what FastAPI and uvicorn cost with no GraphQL, no
authentication, no database.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response


def create_app(body: bytes) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/graphql")
    async def graphql(request: Request) -> Response:
        await request.json()
        return Response(content=body, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str]) -> None:
    port, body_file = int(argv[0]), Path(argv[1])
    config = uvicorn.Config(
        create_app(body_file.read_bytes()),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main(sys.argv[1:])
