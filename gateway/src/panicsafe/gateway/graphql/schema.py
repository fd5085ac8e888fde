"""The gateway's GraphQL schema, assembled from one module per domain, every root field decided by the policy.

Each domain module (`tenancy`, `invitations`, `crises`, `crisis_members`, `identity`, `logbook`,
`chat_fields`) holds its own Query, Mutation and Subscription pieces; `Query`, `Mutation` and
`Subscription` here only inherit from them. `PolicyGuard` is attached to every query and mutation
field when the schema is built; it asks `domain.policy.decide("<Type>.<field>", principal, args)`
before the resolver runs. Subscriptions check the same policy at their start (`streams.crisis_stream`),
then filter every event again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.language import OperationType
from starlette.websockets import WebSocket
from strawberry.extensions import FieldExtension, SchemaExtension

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError
from panicsafe.gateway.domain import policy
from panicsafe.gateway.graphql.chat_fields import ChatMutation, ChatQuery, ChatSubscription
from panicsafe.gateway.graphql.common import GInfo
from panicsafe.gateway.graphql.crises import CrisesMutation, CrisesQuery, CrisesSubscription
from panicsafe.gateway.graphql.crisis_members import CrisisMembersMutation
from panicsafe.gateway.graphql.identity import AccountQuery, IdentityMutation, SessionsQuery
from panicsafe.gateway.graphql.invitations import InvitationsMutation, InvitationsQuery
from panicsafe.gateway.graphql.logbook import (
    LogbookMutation,
    LogbookProofMutation,
    LogbookProofQuery,
    LogbookQuery,
    LogbookSubscription,
)
from panicsafe.gateway.graphql.tenancy import TenancyMutation, TenancyQuery

# The order of the bases is the order of the fields in the published schema (`web/schema.graphql`,
# compared byte for byte by `tests/test_web_schema.py`): a new piece goes last.


@strawberry.type
class Query(
    AccountQuery,
    TenancyQuery,
    InvitationsQuery,
    CrisesQuery,
    SessionsQuery,
    LogbookQuery,
    ChatQuery,
    LogbookProofQuery,
):
    pass


@strawberry.type
class Mutation(
    TenancyMutation,
    InvitationsMutation,
    CrisesMutation,
    CrisisMembersMutation,
    IdentityMutation,
    LogbookMutation,
    ChatMutation,
    LogbookProofMutation,
):
    pass


@strawberry.type
class Subscription(CrisesSubscription, LogbookSubscription, ChatSubscription):
    pass


class PolicyGuard(FieldExtension):
    """Decides a root field before its resolver runs (fail closed: no rule, no answer)."""

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: GInfo, **kwargs: Any) -> Any:
        principal = await info.context.principal()
        policy.decide(f"{info._raw_info.parent_type.name}.{info.field_name}", principal, kwargs)
        return await next_(source, info, **kwargs)


def root_field_keys(schema: strawberry.Schema) -> list[str]:
    """`Type.field` of every root field: what the policy must cover."""
    graphql_schema = schema._schema  # the graphql-core schema strawberry built
    roots = (graphql_schema.query_type, graphql_schema.mutation_type, graphql_schema.subscription_type)
    return [f"{root.name}.{name}" for root in roots if root is not None for name in root.fields]


def guard_root_fields(*roots: type) -> None:
    """Attach `PolicyGuard` to every query and mutation field (subscriptions decide in their body)."""
    for root in roots:
        for field in root.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            if not any(isinstance(e, PolicyGuard) for e in field.extensions):
                field.extensions.append(PolicyGuard())


class GatewaySchema(strawberry.Schema):
    """Refusals and bad input are answers, not incidents: only unexpected errors reach the error log."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        unexpected = [
            e
            for e in errors
            if e.original_error is not None and not isinstance(e.original_error, (ServiceError, GraphQLError))
        ]
        if unexpected:
            super().process_errors(unexpected, execution_context)


class SubscriptionsOverWebSocket(SchemaExtension):
    """A subscription sent as a plain HTTP request gets `invalid`, not an internal error."""

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        context = self.execution_context.context
        request = getattr(context, "request", None)
        over_http = request is not None and not isinstance(request, WebSocket)
        if (
            document is not None
            and over_http
            and any(getattr(d, "operation", None) == OperationType.SUBSCRIPTION for d in document.definitions)
        ):
            raise ServiceError(ErrorCode.INVALID, "Les abonnements passent par WebSocket (graphql-transport-ws).")
        yield


def build_schema(extensions: list[Any]) -> strawberry.Schema:
    guard_root_fields(Query, Mutation)
    return GatewaySchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=[*extensions, SubscriptionsOverWebSocket]
    )
