"""Fixtures shared by every test: one devstack of real servers per session, on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from panicsafe.core.bus.connection import connect_nats
from panicsafe.core.bus.events import ensure_events_stream
from panicsafe.core.devstack import DevStack
from panicsafe.core.testing import ProvisionedSchema, make_schema


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    devstack = DevStack(tmp_path_factory.mktemp("devstack"), harness=True)
    devstack.start()
    yield devstack
    devstack.stop()


@pytest.fixture
async def nc(stack: DevStack) -> AsyncIterator[Client]:
    client = await connect_nats(stack.nats.url, "pytest", stack.nats.credentials())
    await ensure_events_stream(client.jetstream())
    yield client
    await client.close()


@pytest.fixture
async def schema(stack: DevStack) -> ProvisionedSchema:
    return await make_schema(stack)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).parent
