"""Each operation and event is declared once, the committed contracts are the declarations, and
nothing on either side of the bus names an operation by a bare string."""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from panicsafe.contracts import catalog
from panicsafe.contracts.declarations import EventType, Operation
from panicsafe.contracts.events import Mode
from panicsafe.contracts.export import contracts_json
from panicsafe.core.bus.rpc import RpcContext, RpcRouter

CONTRACT_MODULES = ("chat", "logbook", "gateway", "health")


class Ping(BaseModel):
    n: int


class Pong(BaseModel):
    n: int


def test_committed_contracts_are_current(repo_root: Path) -> None:
    committed = (repo_root / "libs" / "contracts" / "contracts.json").read_text()
    assert committed == contracts_json(), (
        "libs/contracts/contracts.json is stale: run `uv run python -m panicsafe.contracts.export "
        "libs/contracts/contracts.json`"
    )


def test_every_declaration_of_a_contract_module_is_in_the_catalog() -> None:
    listed_ops = {id(op) for op in catalog.operations()}
    listed_events = {id(e) for e in catalog.events()}
    for name in CONTRACT_MODULES:
        module = importlib.import_module(f"panicsafe.contracts.{name}")
        for attribute, value in vars(module).items():
            if isinstance(value, Operation):
                assert id(value) in listed_ops, f"{name}.{attribute} is declared but not in the catalog"
            if isinstance(value, EventType):
                assert id(value) in listed_events, f"{name}.{attribute} is declared but not in the catalog"


def test_names_are_unique_and_belong_to_their_service() -> None:
    subjects = [op.subject for op in catalog.operations()]
    assert len(subjects) == len(set(subjects))
    types = [e.type for e in catalog.events()]
    assert len(types) == len(set(types))
    for entry in catalog.SERVICES:
        assert all(op.service == entry.name for op in entry.all_operations())
        assert all(e.service == entry.name for e in entry.events)


def test_subscriptions_and_calls_name_what_exists() -> None:
    """What the bus permissions are generated from: a consumer of declared events, calls to known services."""
    durables = [sub.durable for sub in catalog.subscriptions()]
    assert len(durables) == len(set(durables))
    declared_events = {id(e) for e in catalog.events()}
    for entry in catalog.SERVICES:
        for sub in entry.subscriptions:
            assert sub.service == entry.name and sub.durable.startswith(f"{entry.name}-")
            assert all(id(event) in declared_events for event in sub.events)
        assert set(entry.calls) <= set(catalog.SERVICE_NAMES) - {entry.name}
        assert catalog.GATEWAY not in entry.calls  # no service calls the gateway
    assert set(catalog.service(catalog.GATEWAY).calls) == set(catalog.DOWNSTREAM)


def test_a_subscription_declares_events_or_everything() -> None:
    from panicsafe.contracts.declarations import Subscription
    from panicsafe.contracts.gateway import CRISIS_DECLARED

    with pytest.raises(ValueError, match="either"):
        Subscription("chat", "chat-both", events=(CRISIS_DECLARED,), everything=True)
    with pytest.raises(ValueError, match="either"):
        Subscription("chat", "chat-none")
    with pytest.raises(ValueError, match="durable"):
        Subscription("chat", "logbook-writer", everything=True)  # another service's name
    only = Subscription("chat", "chat-only", events=(CRISIS_DECLARED,))
    assert only.filter_subjects == ("evt.*.*.gateway.crisis_declared",)


def test_the_workspace_holds_every_registered_service(repo_root: Path) -> None:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())
    distributions = {entry.distribution for entry in catalog.SERVICES}
    assert distributions <= set(project["project"]["dependencies"])
    assert distributions <= set(project["tool"]["uv"]["sources"])
    mypy_path = project["tool"]["mypy"]["mypy_path"].split(":")
    for entry in catalog.SERVICES:
        folder = "gateway" if entry.name == catalog.GATEWAY else f"services/{entry.name}"
        assert f"{folder}/src" in mypy_path, f"{folder}/src is missing from mypy_path"
        assert (repo_root / folder / "src" / "panicsafe" / entry.name / "__main__.py").is_file()
    services_on_disk = {p.name for p in (repo_root / "services").iterdir() if (p / "pyproject.toml").is_file()}
    assert services_on_disk == set(catalog.DOWNSTREAM), "services/ and the registry disagree"


def test_a_router_refuses_another_services_operation() -> None:
    router = RpcRouter("alpha")
    op = Operation("beta", "ping", Ping, Pong, "Ping beta")
    with pytest.raises(ValueError, match="not an operation of alpha"):
        router.handle(op)


def test_an_operation_is_registered_once() -> None:
    router = RpcRouter("alpha")
    op = Operation("alpha", "ping", Ping, Pong, "Ping alpha")

    async def ping(request: Ping, ctx: RpcContext) -> Pong:
        return Pong(n=request.n)

    router.handle(op)(ping)
    with pytest.raises(ValueError, match="registered twice"):
        router.handle(op)(ping)


@pytest.mark.parametrize(
    ("service", "name", "description"),
    [("chat", "send.x", "d"), ("chat", "*", "d"), ("a b", "send", "d"), ("chat", "send", " ")],
)
def test_declarations_refuse_bad_names_and_empty_descriptions(service: str, name: str, description: str) -> None:
    with pytest.raises(ValueError, match=r"single subject token|one-line description"):
        Operation(service, name, Ping, Pong, description)
    with pytest.raises(ValueError, match=r"single subject token|one-line description"):
        EventType(service, name, Ping, description)


def test_an_event_carries_its_declared_payload_and_parses_back() -> None:
    pinged = EventType("alpha", "pinged", Ping, "Someone pinged")
    event = pinged.event(Ping(n=3), tenant="0b0c5f5e-8f43-4a53-9d39-1d3d0a0f6a01", mode=Mode.EXERCISE)
    assert event.type == "fr.panicsafe.alpha.pinged"
    assert event.nats_subject.endswith(".alpha.pinged")
    assert pinged.parse(event) == Ping(n=3)
    with pytest.raises(TypeError):
        pinged.event(Pong(n=3), tenant="0b0c5f5e-8f43-4a53-9d39-1d3d0a0f6a01")  # type: ignore[arg-type]
    other = EventType("alpha", "ponged", Pong, "Someone ponged")
    assert not other.matches(event)
    with pytest.raises(ValueError, match=r"is not fr\.panicsafe\.alpha\.ponged"):
        other.parse(event)


BARE_NAME_CALLS = {"call", "handle", "endpoint"}


def _bare_string_uses(tree: ast.AST) -> list[int]:
    """Lines calling `.call("x", ...)`, `.handle("x")`, `.endpoint("x")`, or comparing `short_type` with a string."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in BARE_NAME_CALLS:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                lines.append(node.lineno)
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(s, ast.Attribute) and s.attr == "short_type" for s in sides) and any(
                isinstance(s, ast.Constant | ast.Tuple | ast.Set) for s in sides
            ):
                lines.append(node.lineno)
    return lines


def test_no_operation_or_event_is_named_by_a_bare_string(repo_root: Path) -> None:
    offenders = []
    for folder in ("libs", "services", "gateway", "tests", "bench"):
        for path in sorted((repo_root / folder).rglob("*.py")):
            if "node_modules" in path.parts or "/migrations/" in str(path):
                continue
            for line in _bare_string_uses(ast.parse(path.read_text(), str(path))):
                offenders.append(f"{path.relative_to(repo_root)}:{line}")
    assert offenders == [], "declare the operation or event in panicsafe.contracts and refer to it"
