"""Request limits, static cost, caches and error masking, on a small schema built for the test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, OperationDefinitionNode, parse
from graphql.language.parser import Parser
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionResult

from panicsafe.contracts.errors import ErrorCode, FieldError
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.graphql import limits
from panicsafe.gateway.graphql.limits import (
    MAX_ALIASES,
    MAX_COST,
    MAX_DEPTH,
    MAX_QUERY_BYTES,
    CostCounter,
    graphql_extensions,
    mask_error,
)


@strawberry.type
class Item:
    id: int

    @strawberry.field
    def child(self) -> Item:
        return Item(id=self.id + 1)

    @strawberry.field
    def children(self, first: int = 10) -> list[Item]:
        return [Item(id=self.id * 10 + i) for i in range(min(first, 2))]

    @strawberry.field
    def tags(self) -> list[Item]:
        return [Item(id=0)]

    @strawberry.field
    def page(self, limit: int) -> list[Item]:
        return [Item(id=i) for i in range(min(limit, 2))]


@strawberry.type
class Query:
    @strawberry.field
    def item(self) -> Item:
        return Item(id=1)

    @strawberry.field
    def items(self, first: int = 10) -> list[Item]:
        return [Item(id=i) for i in range(min(first, 2))]

    @strawberry.field
    def refused(self) -> str:
        raise ServiceError(ErrorCode.FORBIDDEN, "Accès refusé à cette crise.")

    @strawberry.field
    def rejected(self) -> str:
        raise ServiceError(ErrorCode.INVALID, "invalid fields: title", [FieldError(field="title", message="too long")])

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError("secret detail")


def build_schema(*, development: bool = False) -> strawberry.Schema:
    return strawberry.Schema(query=Query, extensions=graphql_extensions(development=development))


class FailingHook(SchemaExtension):
    """Another extension that fails before it yields (Strawberry answers outside the hooks)."""

    def on_execute(self) -> Iterator[None]:
        raise RuntimeError("secret detail from a hook")
        yield  # pragma: no cover


def codes(result: ExecutionResult) -> list[str]:
    return [str((error.extensions or {}).get("code")) for error in result.errors or []]


def messages(result: ExecutionResult) -> list[str]:
    return [error.message for error in result.errors or []]


def nested(field: str, levels: int) -> str:
    return "{ " + (f"{field} {{ " * levels) + "id" + (" }" * levels) + " }"


async def test_an_ordinary_query_runs() -> None:
    result = await build_schema().execute(
        "query Ordinary { items(first: 2) { id children(first: 2) { id child { id } } } item { tags { id } } }"
    )
    assert result.errors is None
    assert result.data is not None
    assert [item["id"] for item in result.data["items"]] == [0, 1]
    assert result.data["items"][1]["children"] == [{"id": 10, "child": {"id": 11}}, {"id": 11, "child": {"id": 12}}]


async def test_a_query_deeper_than_the_limit_is_refused() -> None:
    schema = build_schema()
    accepted = await schema.execute(nested("child", MAX_DEPTH - 1).replace("{ child", "{ item", 1))
    assert accepted.errors is None
    result = await schema.execute(nested("child", MAX_DEPTH + 2).replace("{ child", "{ item", 1))
    assert result.data is None
    assert codes(result) == ["invalid"]
    assert "exceeds maximum operation depth" in messages(result)[0]


async def test_too_many_aliases_are_refused() -> None:
    schema = build_schema()
    fine = " ".join(f"a{i}: item {{ id }}" for i in range(MAX_ALIASES))
    assert (await schema.execute(f"{{ {fine} }}")).errors is None
    many = " ".join(f"a{i}: item {{ id }}" for i in range(MAX_ALIASES + 1))
    result = await schema.execute(f"{{ {many} }}")
    assert result.data is None
    assert codes(result) == ["invalid"]
    assert messages(result) == [f"{MAX_ALIASES + 1} aliases found. Allowed: {MAX_ALIASES}"]


async def test_a_costly_query_is_refused() -> None:
    result = await build_schema().execute("{ items(first: 100) { children(first: 100) { id } } }")
    assert result.data is None
    assert codes(result) == ["invalid"]
    # 1 + 100 x (1 + 100 x 1)
    assert messages(result) == [f"query too costly (cost 10101 > {MAX_COST})"]


async def test_cost_follows_fragments_and_defaults() -> None:
    schema = build_schema()
    spread = await schema.execute(
        "query { items(first: 100) { ...F } } fragment F on Item { children(first: 100) { id } }"
    )
    assert codes(spread) == ["invalid"]
    inline = await schema.execute("{ items(first: 100) { ... on Item { children(first: 100) { id } } } }")
    assert codes(inline) == ["invalid"]
    # Without `first`, the declared default (10) counts: 1 + 10 x (1 + 10 x (1 + 10 x 1)) = 1111.
    assert (await schema.execute("{ items { children { children { id } } } }")).errors is None
    # A list field without any page argument counts as 10 items.
    assert (await schema.execute("{ items(first: 50) { tags { tags { id } } } }")).errors is not None


async def test_variables_are_counted_with_their_values() -> None:
    schema = build_schema()
    query = "query Q($n: Int = 2) { items(first: $n) { children(first: $n) { id } } }"
    assert (await schema.execute(query)).errors is None
    assert (await schema.execute(query, variable_values={"n": 5})).errors is None
    # The default passes validation (cached per document); the value is caught before execution.
    result = await schema.execute(query, variable_values={"n": 100})
    assert result.data is None
    assert codes(result) == ["invalid"]
    assert messages(result) == [f"query too costly (cost 10101 > {MAX_COST})"]
    # Without a default in the operation, a variable counts as the argument's default (10 here)...
    declared = "query D($n: Int!) { items(first: $n) { children(first: $n) { id } } }"
    assert (await schema.execute(declared, variable_values={"n": 2})).errors is None
    assert codes(await schema.execute(declared, variable_values={"n": 100})) == ["invalid"]
    # ... else as 100 while validating, whatever its value: give such variables a default.
    unknown = "query U($n: Int!) { item { page(limit: $n) { page(limit: $n) { id } } } }"
    assert codes(await schema.execute(unknown, variable_values={"n": 1})) == ["invalid"]
    defaulted = "query V($n: Int! = 1) { item { page(limit: $n) { page(limit: $n) { id } } } }"
    assert (await schema.execute(defaulted, variable_values={"n": 2})).errors is None


def only_operation(source: str) -> OperationDefinitionNode:
    [operation] = parse(source).definitions
    assert isinstance(operation, OperationDefinitionNode)
    return operation


def test_cost_counter_on_its_own() -> None:
    schema = build_schema()._schema
    operation = only_operation("query($a: Int, $b: Int = 3) { items(first: $a) { children(first: $b) { id } } }")
    assert CostCounter(schema, {}, {"a": 7}).operation_cost(operation) == 1 + 7 * (1 + 3 * 1)
    assert CostCounter(schema, {}, {"a": 7, "b": 9}).operation_cost(operation) == 1 + 7 * (1 + 9 * 1)
    assert CostCounter(schema, {}).operation_cost(operation) == 1 + 10 * (1 + 3 * 1)  # declared default
    huge = only_operation("{ items(first: " + "9" * 5000 + ") { child { id } } }")
    assert CostCounter(schema, {}).operation_cost(huge) == 1 + limits.MAX_MULTIPLIER * 2
    negative = only_operation("{ items(first: -5) { child { id } } }")
    assert CostCounter(schema, {}).operation_cost(negative) == 1 + 1 * 2


async def test_introspection_only_in_development() -> None:
    query = "{ __schema { queryType { name } } }"
    refused = await build_schema(development=False).execute(query)
    assert refused.data is None
    assert set(codes(refused)) == {"invalid"}
    assert "introspection has been disabled" in messages(refused)[0]
    allowed = await build_schema(development=True).execute(query)
    assert allowed.errors is None
    assert allowed.data == {"__schema": {"queryType": {"name": "Query"}}}


async def test_the_same_document_is_parsed_and_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    validated: list[int] = []
    parse_document = Parser.parse_document
    operation_cost = CostCounter.operation_cost

    def counting_parse(self: Parser) -> Any:
        parsed.append(1)
        return parse_document(self)

    def counting_cost(self: CostCounter, operation: Any) -> int:
        validated.append(1)
        return operation_cost(self, operation)

    monkeypatch.setattr(Parser, "parse_document", counting_parse)
    monkeypatch.setattr(CostCounter, "operation_cost", counting_cost)
    schema = build_schema()
    query = f"# {uuid.uuid4()}\n{{ items(first: 2) {{ id }} }}"  # never seen by the caches
    for _ in range(3):
        result = await schema.execute(query)
        assert result.errors is None
    assert len(parsed) == 1
    assert len(validated) == 1


async def test_oversized_documents_are_refused_while_parsing() -> None:
    padding = "#" + "x" * MAX_QUERY_BYTES + "\n"
    result = await build_schema().execute(padding + "{ item { id } }")
    assert result.data is None
    assert codes(result) == ["invalid"]
    tokens = "{ " + " ".join("item { id }" for _ in range(limits.MAX_TOKENS // 4 + 1)) + " }"
    too_many = await build_schema().execute(tokens)
    assert codes(too_many) == ["invalid"]
    assert "tokens" in messages(too_many)[0]


async def test_a_service_error_keeps_its_code_and_message() -> None:
    result = await build_schema().execute("{ refused }")
    assert result.errors is not None
    [error] = result.errors
    assert error.message == "Accès refusé à cette crise."
    assert error.extensions == {"code": "forbidden"}
    assert error.path == ["refused"]
    assert error.original_error is None
    invalid = await build_schema().execute("{ rejected }")
    assert invalid.errors is not None
    assert invalid.errors[0].extensions == {
        "code": "invalid",
        "fields": [{"field": "title", "message": "too long"}],
    }


async def test_an_unexpected_exception_reveals_nothing() -> None:
    result = await build_schema().execute("{ broken item { id } }")
    assert result.errors is not None
    [error] = result.errors
    assert error.message == "Erreur interne"
    assert error.extensions == {"code": "internal"}
    assert error.original_error is None
    assert error.__traceback__ is None
    assert result.data is None or result.data.get("item") == {"id": 1}
    dumped = json.dumps({"data": result.data, "errors": [e.formatted for e in result.errors]})
    assert "secret detail" not in dumped
    assert "RuntimeError" not in dumped


async def test_request_errors_keep_their_message() -> None:
    schema = build_schema()
    unknown = await schema.execute("{ nope }")
    assert codes(unknown) == ["invalid"]
    assert "Cannot query field 'nope'" in messages(unknown)[0]
    syntax = await schema.execute("{ item { id }")
    assert codes(syntax) == ["invalid"]
    assert messages(syntax)[0].startswith("Syntax Error")
    variable = await schema.execute("query($n: Int!) { items(first: $n) { id } }", variable_values={"n": "x"})
    assert codes(variable) == ["invalid"]
    assert "$n" in messages(variable)[0]


def test_mask_error_directly() -> None:
    masked = mask_error(GraphQLError("boom", path=["a"], original_error=KeyError("secret")))
    assert (masked.message, masked.extensions) == ("Erreur interne", {"code": "internal"})
    # Masking twice changes nothing.
    assert mask_error(masked).formatted == masked.formatted
    coded = GraphQLError("denied on purpose", extensions={"code": "forbidden"})
    on_purpose = mask_error(GraphQLError("denied on purpose", path=["a"], original_error=coded))
    assert (on_purpose.message, on_purpose.extensions) == ("denied on purpose", {"code": "forbidden"})
    wrapped = GraphQLError(
        "x",
        path=["a"],
        original_error=GraphQLError("y", original_error=ServiceError(ErrorCode.NOT_FOUND, "Crise introuvable.")),
    )
    assert (mask_error(wrapped).message, mask_error(wrapped).extensions) == (
        "Crise introuvable.",
        {"code": "not_found"},
    )


async def test_an_exception_in_another_extension_reveals_nothing() -> None:
    schema = strawberry.Schema(query=Query, extensions=[*graphql_extensions(development=False), FailingHook])
    result = await schema.execute("{ item { id } }")
    assert result.errors is not None
    assert [(e.message, e.extensions) for e in result.errors] == [("Erreur interne", {"code": "internal"})]
    assert "secret detail" not in json.dumps([e.formatted for e in result.errors])
