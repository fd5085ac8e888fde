"""Property-based fuzzing of the gateway's edge, over real HTTP: `/graphql` and every `/auth/*` route.

Documents are random text, or generated from the schema itself (any root field, random arguments of
right and wrong types, inline or as variables, random selections); envelopes and bodies are random
JSON, not JSON at all, or sent with the wrong content type. Each request goes to the real gateway
process, with the access token of an administrator and anonymously. The oracles, for every answer:

- never a 5xx and never a hang (no answer within `TIMEOUT_S`);
- a JSON body, with no stack trace, exception or database driver name in it;
- every GraphQL error carries `extensions.code`, one of the stable codes (`internal` is a bug);
- every other error (the edge, `/auth/*`) is `{"error": {"code", "message"}}` with a stable code and
  the HTTP status that follows it.

Shrinking is off (each example costs real requests): the regression cases at the end are the minimal
reproducers of what the fuzzing found.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    get_named_type,
)
from gwclient import PASSWORD, Account, GatewayUnderTest, declare, gql, new_tenant_admin, session_of
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from softauthn import SoftAuthenticator

from panicsafe.gateway.auth import routes
from panicsafe.gateway.auth.routes import STATUS, build_auth_router
from panicsafe.gateway.graphql.limits import MAX_ALIASES, MAX_QUERY_BYTES, graphql_extensions
from panicsafe.gateway.graphql.schema import build_schema
from panicsafe.gateway.http import MAX_AUTH_BODY

GRAPHQL = build_schema(graphql_extensions(development=True))._schema
STABLE_CODES = frozenset(
    {"invalid", "forbidden", "unauthenticated", "not_found", "conflict", "rate_limited", "unavailable"}
)
STATUS_OF = {code.value: status for code, status in STATUS.items()}
LEAK_MARKERS = ("Traceback", 'File "', "Exception")
LEAK_LIBRARIES = ("asyncpg", "psycopg", "sqlalchemy")
HTTP_REFUSALS = (405, 413, 415)  # method, size and media type refusals may keep their own status with `invalid`
TIMEOUT_S = 15.0
JSON_TYPE = "application/json"

FUZZ = settings(
    deadline=None,
    database=None,  # nothing written in the repository
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# --- the target: the session's gateway, an administrator of a tenant of its own ------------------


REAL_IDS = ("crisis", "cell", "establishment", "user", "invitation")
"""Identifiers of the administrator's own objects: generated IDs name them as `@@crisis@@`, and so on."""


@dataclass
class Target:
    """The gateway, as the fuzzing sees it: a client, an administrator and a user enrolled with a passkey."""

    http: httpx.Client = dataclasses.field(repr=False)
    token: str = dataclasses.field(repr=False)  # the administrator's access token
    enrolment: str  # a pending enrolment (invitation accepted, password set), for passkey registrations
    ids: dict[str, str]
    # The software authenticator holding the passkey of a second user, and that user's access token.
    authenticator: SoftAuthenticator = dataclasses.field(repr=False)
    passkey_token: str = dataclasses.field(repr=False)
    enrolments: int = 1

    def real(self, content: bytes) -> bytes:
        """`content` with the placeholders of generated IDs replaced by the administrator's own ones."""
        for kind, value in self.ids.items():
            content = content.replace(f"@@{kind}@@".encode(), value.encode())
        return content


INVITE_LINK = "mutation($i: InvitationInput!) { createInvitation(input: $i) { link } }"


async def start_enrolment(client: httpx.AsyncClient, admin: Account, name: str) -> str:
    """An invitation from `admin`, accepted with a password: the enrolment waits for a second factor."""
    invited = await gql(
        client, admin.session, INVITE_LINK, {"i": {"login": f"fuzz-{secrets.token_hex(4)}", "displayName": name}}
    )
    token = invited["createInvitation"]["link"].split("/invitation/", 1)[1]
    started = await client.post("/auth/enrol/password", json={"token": token, "password": PASSWORD})
    assert started.status_code == 200, started.text
    enrolment: str = started.json()["enrolment"]
    return enrolment


@pytest.fixture(scope="module")
async def target(gateway: GatewayUnderTest) -> AsyncIterator[Target]:
    throttle_before = await gateway.admin_sql("SELECT * FROM gateway.auth_throttle")
    async with gateway.client() as client:
        # A region of its own: the fuzzing may share this tenant's crises with its region (updateTenant).
        admin = await new_tenant_admin(gateway, client, name=f"GHT Fuzz {secrets.token_hex(3)}", region="COR")
        pending_enrolment = await start_enrolment(client, admin, "Clé Fuzz")
        # A second user enrolled with a passkey: the software authenticator keeps its key for the sign-ins.
        authenticator = SoftAuthenticator(origin=gateway.url, rp_id="127.0.0.1")
        enrolment = await start_enrolment(client, admin, "Clé Fuzz 2")
        options = await client.post("/auth/enrol/passkey/options", json={"enrolment": enrolment})
        credential = authenticator.create(options.json())
        passkey_user = session_of(
            await client.post("/auth/enrol/passkey", json={"enrolment": enrolment, "credential": credential})
        )
        crisis = await declare(client, admin, "Crise Fuzz")
        pending = await gql(
            client,
            admin.session,
            "mutation($i: InvitationInput!) { createInvitation(input: $i) { invitation { id } } }",
            {"i": {"login": f"fuzz-{secrets.token_hex(4)}", "displayName": "Invitation", "crisisId": crisis["id"]}},
        )
        establishments = await gql(client, admin.session, "{ establishments { id } }")
    ids = {
        "crisis": crisis["id"],
        "cell": crisis["cells"][0]["id"],
        "establishment": establishments["establishments"][0]["id"],
        "user": admin.user_id,
        "invitation": pending["createInvitation"]["invitation"]["id"],
    }
    assert set(ids) == set(REAL_IDS)
    # No keep-alive: a connection the server dropped after a failure is never reused by the next example.
    limits = httpx.Limits(max_keepalive_connections=0)
    try:
        with httpx.Client(base_url=gateway.url, timeout=TIMEOUT_S, limits=limits) as http:
            yield Target(
                http=http,
                token=admin.session.access,
                enrolment=pending_enrolment,
                ids=ids,
                authenticator=authenticator,
                passkey_token=passkey_user.access,
            )
    finally:
        # Random logins fed the per-address and per-account throttles: leave them as the session had them.
        keys = [row["key"] for row in throttle_before]
        await gateway.admin_sql("DELETE FROM gateway.auth_throttle WHERE key <> ALL($1::text[])", keys)
        for row in throttle_before:
            await gateway.admin_sql(
                "UPDATE gateway.auth_throttle SET failures = $2, window_start = $3, locked_until = $4 WHERE key = $1",
                row["key"],
                row["failures"],
                row["window_start"],
                row["locked_until"],
            )


# --- sending and judging ----------------------------------------------------------------------------


def encode(payload: Any) -> bytes:
    """JSON with every non-ASCII character escaped: lone surrogates and NULs travel as `\\uXXXX`."""
    return json.dumps(payload, ensure_ascii=True).encode()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None


def post(
    target: Target,
    path: str,
    content: bytes,
    *,
    content_type: str | None = JSON_TYPE,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(headers or {})
    if content_type is not None:
        sent["content-type"] = content_type
    if token is not None:
        sent["authorization"] = f"Bearer {token}"
    try:
        return target.http.post(path, content=content, headers=sent)
    except httpx.TimeoutException:
        pytest.fail(f"POST {path}: no answer within {TIMEOUT_S} s (hang) to {content[:500]!r}")
    except httpx.TransportError as exc:
        pytest.fail(f"POST {path}: connection dropped ({exc!r}) on {content[:500]!r}")


def strings_in(value: Any) -> Iterator[str]:
    """Every string of a JSON value, keys included (iterative: request bodies may be nested deeply)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def sent_bytes(request: httpx.Request) -> bytes:
    try:
        return request.content
    except httpx.RequestNotRead:  # a streamed (chunked) body
        return b""


def echo_of(request: httpx.Request) -> str:
    """What the client sent, as text: a marker the client itself sent may come back in a message."""
    content = sent_bytes(request)
    raw = content.decode("utf-8", "replace")
    try:
        decoded = json.loads(content)
    except (ValueError, RecursionError):
        return raw
    return raw + "\n" + "\n".join(strings_in(decoded))


def check(response: httpx.Response, *, graphql: bool) -> Any:
    """The oracles every answer must pass; returns the decoded body."""
    request = response.request
    content = sent_bytes(request)
    where = (
        f"{request.method} {request.url.path} -> {response.status_code} "
        f"{response.headers.get('content-type')}: {response.text[:600]!r}\n"
        f"request ({len(content)} bytes): {content[:600]!r}"
    )
    assert response.status_code < 500, f"server error: {where}"
    if response.status_code == 204:
        assert not response.content, where
        return None
    assert response.headers.get("content-type", "").startswith(JSON_TYPE), f"not a JSON answer: {where}"
    try:
        body = json.loads(response.content)
    except ValueError:
        pytest.fail(f"body is not JSON: {where}")
    seen = response.text + "\n" + "\n".join(strings_in(body))
    sent = echo_of(request)
    for marker in LEAK_MARKERS:
        assert marker not in seen or marker in sent, f"{marker!r} in the answer: {where}"
    for library in LEAK_LIBRARIES:
        assert library not in seen.lower() or library in sent.lower(), f"{library!r} in the answer: {where}"
    if graphql and response.status_code == 200:
        assert isinstance(body, dict), where
        assert set(body) <= {"data", "errors", "extensions"}, where
        errors = body.get("errors") or []
        assert errors or body.get("data") is not None, f"neither data nor errors: {where}"
        for error in errors:
            code = (error.get("extensions") or {}).get("code")
            assert code in STABLE_CODES, f"GraphQL error with code {code!r}: {where}"
    elif response.status_code >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict), f"error without the {{'error': {{'code'}}}} envelope: {where}"
        code = error.get("code")
        assert code in STABLE_CODES, f"error code {code!r}: {where}"
        assert isinstance(error.get("message"), str), where
        follows = response.status_code == STATUS_OF[code] or (
            code == "invalid" and response.status_code in HTTP_REFUSALS
        )
        assert follows, f"status does not follow the code {code!r}: {where}"
    return body


def post_graphql(
    target: Target, content: bytes, *, content_type: str | None = JSON_TYPE, token: str | None = None
) -> Any:
    return check(post(target, "/graphql", content, content_type=content_type, token=token), graphql=True)


def both_ways(target: Target, content: bytes, content_type: str | None = JSON_TYPE) -> None:
    """As the administrator, then anonymously."""
    post_graphql(target, content, content_type=content_type, token=target.token)
    post_graphql(target, content, content_type=content_type)


# --- values: right and (often) wrong ---------------------------------------------------------------

NAME_RE = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
NAMES = st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,12}", fullmatch=True)
EVERY_CHARACTER = st.characters(exclude_categories=())  # controls, NUL and lone surrogates included
NASTY_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\u202e\u0000",
    "\r\n\t\x1b[31m",
    "🚑" * 3,
    "é",
    "' OR 1=1 --",
    "'); DROP TABLE crises; --",
    "%s%n%x",
    "${jndi:ldap://x/a}",
    "{{7*7}}",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "-1",
    "NaN",
    "null",
    "true",
    "__proto__",
)
TEXT = st.one_of(
    st.text(EVERY_CHARACTER, max_size=24),
    st.sampled_from(NASTY_STRINGS),
    st.uuids().map(str),
)
LONG_TEXT = st.builds(lambda char, size: char * size, st.sampled_from("xé\x00🚑\ud800"), st.integers(0, 20_000))
INTS = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**80), 2**80),
    st.sampled_from([0, -1, 2**31, -(2**31) - 1, 2**53 + 1, 2**63, 2**64, 10**100]),
)
FLOATS = st.floats()  # NaN and infinities included: Python's JSON writes them, the server's reads them
SCALARS = st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT)
JSON_JUNK = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.one_of(NAMES, TEXT), children, max_size=4)
    ),
    max_leaves=12,
)
DATETIMES = st.one_of(
    st.builds(
        lambda moment, offset: moment.isoformat() + offset,
        st.datetimes(),
        st.sampled_from(["Z", "+00:00", "+14:00", "-12:00", "+23:59", "", "+99:99"]),
    ),
    st.sampled_from(["2026-11-23T05:00:00+00:00", "0001-01-01T00:00:00-12:00", "9999-12-31T23:59:59-12:00", "now"]),
    TEXT,
)
B64URL = st.binary(max_size=48).map(b64url)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip)
"""Printable ASCII without surrounding blanks: what an HTTP client can put in a header at all."""
BEARERS = st.one_of(
    st.none(),
    HEADER_TEXT.filter(bool),
    st.builds(
        lambda head, claims, signature: f"{b64url(encode(head))}.{b64url(encode(claims))}.{signature}",
        JSON_JUNK,
        JSON_JUNK,
        B64URL,
    ),
)
"""No token, junk, or a JWT of junk (header, claims and signature)."""
SCALAR_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "ID": st.one_of(st.sampled_from([f"@@{kind}@@" for kind in REAL_IDS]), st.uuids().map(str), TEXT, INTS),
    "String": st.one_of(TEXT, TEXT, LONG_TEXT),
    "Int": INTS,
    "Float": FLOATS,
    "Boolean": st.booleans(),
    "DateTime": DATETIMES,
    "JSON": JSON_JUNK,
}


def unwrap(kind: Any) -> Any:
    while isinstance(kind, GraphQLNonNull | GraphQLList):
        kind = kind.of_type
    return kind


@cache
def value_for(kind: GraphQLInputType) -> st.SearchStrategy[Any]:
    """A value for an input of type `kind`: of the right shape half of the time, anything otherwise."""
    return st.one_of(right_value(kind), right_value(kind), JSON_JUNK, st.none())


def right_value(kind: GraphQLInputType) -> st.SearchStrategy[Any]:
    if isinstance(kind, GraphQLNonNull):
        return right_value(kind.of_type)
    if isinstance(kind, GraphQLList):
        item = value_for(kind.of_type)
        return st.one_of(st.lists(item, max_size=4), item, st.lists(st.lists(item, max_size=2), max_size=2))
    if isinstance(kind, GraphQLEnumType):
        names = list(kind.values)
        return st.one_of(st.sampled_from(names), st.sampled_from([n.lower() for n in names]), NAMES)
    if isinstance(kind, GraphQLInputObjectType):
        fields = {name: value_for(field.type) for name, field in kind.fields.items()}
        required = {name: s for name, s in fields.items() if isinstance(kind.fields[name].type, GraphQLNonNull)}
        optional = {name: s for name, s in fields.items() if name not in required}
        shaped = st.one_of(
            st.fixed_dictionaries(required, optional=optional),
            st.fixed_dictionaries({}, optional=fields),  # required fields missing too
        )
        extra = st.dictionaries(NAMES, JSON_JUNK, max_size=2)
        return st.builds(lambda a, b: {**b, **a}, shaped, st.one_of(st.just({}), extra))
    return SCALAR_VALUES.get(getattr(kind, "name", ""), JSON_JUNK)


def item_type(kind: Any) -> Any:
    """The type of the items of a list type (a value given as a list where none is expected keeps `kind`)."""
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return kind.of_type if isinstance(kind, GraphQLList) else kind


def literal(value: Any, kind: Any = None) -> str:
    """`value` written inline in a document; enum names go bare, as GraphQL wants them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "NaN"
    if isinstance(value, str):
        if isinstance(unwrap(kind), GraphQLEnumType) and NAME_RE.fullmatch(value):
            return value
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, list):
        return "[" + " ".join(literal(item, item_type(kind)) for item in value) + "]"
    base = unwrap(kind)
    fields = base.fields if isinstance(base, GraphQLInputObjectType) else {}
    entries = []
    for index, (key, item) in enumerate(value.items()):
        name = key if NAME_RE.fullmatch(key) else f"k{index}"
        entries.append(f"{name}: {literal(item, fields[name].type if name in fields else None)}")
    return "{" + ", ".join(entries) + "}"


# --- documents generated from the schema -----------------------------------------------------------

ROOT_FIELDS: list[tuple[str, str, GraphQLField]] = [
    (keyword, name, field)
    for keyword, root in (("query", GRAPHQL.query_type), ("mutation", GRAPHQL.mutation_type))
    if root is not None
    for name, field in root.fields.items()
]
TYPE_NAMES = sorted(name for name in GRAPHQL.type_map if not name.startswith("__"))
WRONG_VARIABLE_TYPES = st.one_of(
    st.sampled_from(TYPE_NAMES),
    st.sampled_from(TYPE_NAMES).map(lambda name: f"[{name}!]!"),
    st.sampled_from(["String", "Int!", "[[ID]]", "Nope", "Boolean!", "JSON"]),
)
DIRECTIVES = ("", "", "", "", " @include(if: true)", " @skip(if: false)", ' @skip(if: "yes")', " @nope", " @deprecated")


def selection(draw: st.DrawFn, kind: GraphQLOutputType, depth: int, budget: int, chaos: bool) -> str:
    """A selection set for `kind`: valid unless `chaos` (unknown fields, junk arguments and directives, ...)."""
    base = get_named_type(kind)
    if not isinstance(base, GraphQLObjectType):
        if not chaos:
            return ""
        return draw(st.sampled_from(["", "", "", "", " { id }", " { __typename }", " {}"]))  # leaves: no selection
    if depth >= budget:
        return " { __typename }" if not chaos else draw(st.sampled_from(["", " { __typename }"]))
    known = st.one_of(st.sampled_from(list(base.fields)), st.just("__typename"))
    names = draw(st.lists(st.one_of(known, NAMES) if chaos else known, min_size=1, max_size=4))
    parts = []
    for name in names:
        alias = draw(st.one_of(st.just(""), st.just(""), NAMES.map(lambda a: f"{a}: ")))
        args = draw(st.sampled_from(["", "", "", "", "(first: 5)", "(x: null)", "(id: $nope)"])) if chaos else ""
        directive = draw(st.sampled_from(DIRECTIVES if chaos else DIRECTIVES[:6]))
        field = base.fields.get(name)
        if field is not None:
            sub = selection(draw, field.type, depth + 1, budget, chaos)
        else:
            sub = draw(st.sampled_from(["", " { id }"])) if chaos else ""
        parts.append(f"{alias}{name}{args}{directive}{sub}")
    if draw(st.integers(0, 9)) == 0:
        parts.append(
            f"... on {draw(st.sampled_from([base.name, *TYPE_NAMES])) if chaos else base.name} {{ __typename }}"
        )
    if chaos and draw(st.integers(0, 19)) == 0:  # just under, at or over the alias limit
        parts.extend(f"b{i}: __typename" for i in range(draw(st.integers(MAX_ALIASES - 2, 2 * MAX_ALIASES))))
    return " { " + " ".join(parts) + " }"


@st.composite
def schema_operations(draw: st.DrawFn) -> dict[str, Any]:
    """One operation on 1-3 random root fields, its arguments inline or as variables, and its envelope.

    Half of the documents are valid GraphQL whose argument values alone are random: those reach the
    resolvers (and the database). The other half are chaos: unknown fields and types, wrong keywords,
    junk arguments and directives, alias bombs, fragment cycles, wrong variable types.
    """
    chaos = draw(st.booleans())
    first = draw(st.sampled_from(ROOT_FIELDS))
    same_kind = [root for root in ROOT_FIELDS if root[0] == first[0]]
    roots = [first, *draw(st.lists(st.sampled_from(ROOT_FIELDS if chaos else same_kind), max_size=2))]
    keyword = draw(st.sampled_from([first[0], first[0], "query", "mutation", ""])) if chaos else first[0]
    budget = draw(st.integers(1, 15))  # the depth limit is 12
    as_variables = draw(st.booleans())
    definitions: list[str] = []
    variables: dict[str, Any] = {}
    fields = []
    for _, name, field in roots:
        required = [arg for arg, spec in field.args.items() if isinstance(spec.type, GraphQLNonNull)]
        optional = [arg for arg in field.args if arg not in required]
        if chaos:
            chosen = draw(st.lists(st.sampled_from(list(field.args)), unique=True)) if field.args else []
        else:
            chosen = required + (draw(st.lists(st.sampled_from(optional), unique=True)) if optional else [])
        rendered = []
        for argument in chosen:
            kind = field.args[argument].type
            value = draw(value_for(kind))
            if as_variables and draw(st.integers(0, 4)) > 0:
                variable = f"v{len(definitions)}"
                declared = draw(st.one_of(st.just(str(kind)), WRONG_VARIABLE_TYPES)) if chaos else str(kind)
                default = draw(st.sampled_from(["", "", "", " = null", ' = "x"', " = 1"])) if chaos else ""
                definitions.append(f"${variable}: {declared}{default}")
                if not chaos or draw(st.integers(0, 9)) > 0:  # sometimes declared and never given
                    variables[variable] = value
                rendered.append(f"{argument}: ${variable}")
            else:
                rendered.append(f"{argument}: {literal(value, kind)}")
        if chaos and draw(st.integers(0, 4)) == 0:
            rendered.append(f"{draw(NAMES)}: {literal(draw(JSON_JUNK))}")  # an argument the field does not take
        alias = draw(st.one_of(st.just(""), NAMES.map(lambda a: f"{a}: ")))
        arguments = f"({', '.join(rendered)})" if rendered else ""
        fields.append(f"{alias}{name}{arguments}{selection(draw, field.type, 1, budget, chaos)}")
    name = draw(st.one_of(st.just(""), NAMES))
    head = " ".join(part for part in (keyword or ("query" if definitions or name else ""), name) if part)
    if definitions:
        head += f"({', '.join(definitions)})"
    fragments = ""
    shape = draw(st.integers(0, 9))
    if shape == 0 and (chaos or keyword == "query"):
        fields.append("...F")
        fragments = " fragment F on Query { __typename }"
    elif shape == 1 and chaos:
        fields.append("...F")
        fragments = " fragment F on Query { ...G } fragment G on Query { ...F }"
    document = f"{head} {{ {' '.join(fields)} }}{fragments}"
    payload: dict[str, Any] = {"query": document}
    if not chaos:
        payload["variables"] = variables
        return payload
    if draw(st.integers(0, 4)) > 0:
        extra = draw(st.dictionaries(NAMES, JSON_JUNK, max_size=2)) if draw(st.integers(0, 4)) == 0 else {}
        payload["variables"] = {**extra, **variables}
    elif draw(st.booleans()):
        payload["variables"] = None
    choice = draw(st.integers(0, 5))
    if choice == 0:
        payload["operationName"] = name or None
    elif choice == 1:
        payload["operationName"] = draw(NAMES)
    return payload


# --- 1a. arbitrary text -----------------------------------------------------------------------------

GRAPHQL_TOKENS = (
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "$",
    "...",
    "@",
    "=",
    "!",
    "|",
    "&",
    ",",
    "#",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "Query",
    "Mutation",
    "me",
    "crisis",
    "crises",
    "declareCrisis",
    "id",
    "__schema",
    "__typename",
    "1e999",
    "-0",
    "99999999999999999999999",
    "true",
    "null",
    "$x",
    '"',
    '"""',
    "\n",
    "\x00",
)
# Never empty: an empty `query` is one of the envelope cases (regression `query-empty`).
ARBITRARY_DOCUMENTS = st.one_of(
    st.text(EVERY_CHARACTER, min_size=1, max_size=300),
    st.lists(st.sampled_from(GRAPHQL_TOKENS), min_size=1, max_size=80).map(" ".join),
    st.builds(
        lambda n, inner: "{" * n + inner + "}" * n, st.integers(1, 6_000), st.sampled_from(["", "me", "a", "x{"])
    ),
    st.builds(lambda n: "{ me " + "{ id " * n + "}" * (n + 1), st.integers(1, 3_000)),
    st.builds(
        lambda n, token: token * n,
        st.integers(1, 8_000),
        st.sampled_from(["[", "(", "{a:", "...", "@a ", "$", '"', "#", "query ", "a:a "]),
    ),
)


@settings(FUZZ, max_examples=100)
@given(document=ARBITRARY_DOCUMENTS)
@example(document="{" * 5_000 + "}" * 5_000)
@example(document="fragment A on Query { ...A } { ...A }")
@example(document="{ me\x00 { id } }")
@example(document="{ __schema { types { name fields { name } } } }")
def test_arbitrary_text_documents(target: Target, document: str) -> None:
    both_ways(target, encode({"query": document}))


# --- 1b. documents generated from the schema ----------------------------------------------------------


@settings(FUZZ, max_examples=150)
@given(payload=schema_operations())
def test_schema_generated_operations(target: Target, payload: dict[str, Any]) -> None:
    both_ways(target, target.real(encode(payload)))


# --- 1c. envelopes and bodies -----------------------------------------------------------------------

QUERIES = st.one_of(
    st.sampled_from(
        ["{ me { id } }", "query A { me { id } } query B { tenant { id } }", "", "fragment F on Query { me { id } }"]
    ),
    ARBITRARY_DOCUMENTS,
)
ENVELOPES = st.fixed_dictionaries(
    {},
    optional={
        "query": st.one_of(QUERIES, QUERIES, JSON_JUNK),
        "variables": st.one_of(JSON_JUNK, st.dictionaries(NAMES, JSON_JUNK, max_size=3)),
        "operationName": st.one_of(st.sampled_from(["A", "B"]), NAMES, JSON_JUNK),
        "extensions": JSON_JUNK,
    },
)


def deep_json(depth: int, opener: str) -> bytes:
    """A GraphQL request whose variable is a JSON value nested `depth` times."""
    closer = {"[": "]", '{"a":': "}"}[opener]
    value = opener * depth + ("" if opener == "[" else "1") + closer * depth
    query = "query($x: ID) { crisis(id: $x) { id } }"
    return f'{{"query": "{query}", "variables": {{"x": {value}}}}}'.encode()


GRAPHQL_BODIES = st.one_of(
    ENVELOPES.map(encode),
    ENVELOPES.map(encode),
    ENVELOPES.map(encode),
    JSON_JUNK.map(encode),  # a JSON body that is not an object
    st.binary(max_size=300),
    st.builds(deep_json, st.integers(1, 9_000), st.sampled_from(["[", '{"a":'])),
    st.builds(lambda n: b'{"query": "{ me { id } }", "variables": {"x": 1' + b"0" * n + b"}}", st.integers(0, 6_000)),
    ENVELOPES.map(encode).map(lambda body: body[:-1] + b'\xff"}' if body != b"{}" else b'{"\xff": 1}'),
)
CONTENT_TYPES = st.sampled_from(
    [
        JSON_TYPE,
        JSON_TYPE,
        JSON_TYPE,
        "application/json; charset=utf-8",
        None,
        "text/plain",
        "application/graphql",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/graphql-response+json",
        "*/*",
    ]
)


@settings(FUZZ, max_examples=100)
@given(body=GRAPHQL_BODIES, content_type=CONTENT_TYPES, bearer=BEARERS)
def test_graphql_envelopes_and_bodies(
    target: Target, body: bytes, content_type: str | None, bearer: str | None
) -> None:
    """As the administrator, then anonymously or with a junk token."""
    post_graphql(target, body, content_type=content_type, token=target.token)
    post_graphql(target, body, content_type=content_type, token=bearer)


# --- 2. every /auth/* route ---------------------------------------------------------------------------

AUTH_PATHS = sorted(getattr(route, "path", "") for route in build_auth_router(origin="http://fuzz.invalid").routes)
AUTH_FIELDS = sorted(
    {
        name
        for model in vars(routes).values()
        if isinstance(model, type) and issubclass(model, BaseModel) and model is not BaseModel
        for name in model.model_fields
    }
)
CREDENTIALS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(B64URL, TEXT),
        "rawId": st.one_of(B64URL, TEXT, INTS),
        "type": st.sampled_from(["public-key", "password", ""]),
        "response": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "clientDataJSON": st.one_of(B64URL, JSON_JUNK.map(lambda v: base64.b64encode(encode(v)).decode())),
                    "authenticatorData": B64URL,
                    "attestationObject": B64URL,
                    "signature": B64URL,
                    "userHandle": st.one_of(B64URL, TEXT, st.none()),
                },
            ),
            JSON_JUNK,
        ),
    },
)
AUTH_VALUES = st.one_of(TEXT, TEXT, LONG_TEXT, st.text("0123456789", min_size=6, max_size=8), JSON_JUNK, CREDENTIALS)
AUTH_OBJECTS = st.dictionaries(st.one_of(st.sampled_from(AUTH_FIELDS), NAMES, TEXT), AUTH_VALUES, max_size=5)
WELL_SHAPED = st.fixed_dictionaries({name: TEXT for name in AUTH_FIELDS if name != "credential"}).map(
    lambda body: {**body, "credential": {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}}
)
AUTH_BODIES = st.one_of(
    AUTH_OBJECTS.map(encode),
    AUTH_OBJECTS.map(encode),
    WELL_SHAPED.map(encode),  # every field present and a string: the route's own code runs
    JSON_JUNK.map(encode),
    st.binary(max_size=200),
    st.builds(lambda n: encode({"login": "x" * n, "password": "p", "token": "t" * n}), st.integers(30_000, 40_000)),
    st.builds(lambda n, opener: (opener * n).encode(), st.integers(1, 5_000), st.sampled_from(["[", '{"a":'])),
    st.builds(lambda n: b'{"code": 1' + b"0" * n + b"}", st.integers(0, 6_000)),
    AUTH_OBJECTS.map(encode).map(lambda body: body[:-1] + b', "\xff": 1}' if body != b"{}" else b'{"\xff": 1}'),
)


@st.composite
def auth_headers(draw: st.DrawFn) -> dict[str, str]:
    headers = {}
    if draw(st.booleans()):
        headers["cookie"] = f"ps_refresh={draw(HEADER_TEXT)}"
    if draw(st.booleans()):
        headers["x-panicsafe-csrf"] = draw(HEADER_TEXT)
    if draw(st.integers(0, 3)) == 0:
        headers["origin"] = draw(st.sampled_from(["http://evil.invalid", "null", ""]))
    return headers


@pytest.mark.parametrize("path", AUTH_PATHS)
@settings(FUZZ, max_examples=20)
@given(
    body=AUTH_BODIES,
    content_type=CONTENT_TYPES,
    headers=auth_headers(),
    bearer=st.sampled_from(["none", "admin", "junk"]),
    junk=BEARERS.filter(bool),
)
def test_auth_routes(
    target: Target,
    path: str,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str],
    bearer: str,
    junk: str,
) -> None:
    if bearer == "junk":
        headers = {**headers, "authorization": f"Bearer {junk}".strip()}
    response = post(
        target,
        path,
        body,
        content_type=content_type,
        token=target.token if bearer == "admin" else None,
        headers=headers,
    )
    check(response, graphql=False)


# --- 2b. WebAuthn: valid credentials from a software authenticator, then mutated ------------------------

SIGNED = ("response.clientDataJSON", "response.authenticatorData", "response.signature")
CREDENTIAL_PARTS = (*SIGNED, "id", "rawId", "type", "response.userHandle", "response.attestationObject", "response")
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(CREDENTIAL_PARTS),
        st.sampled_from(["delete", "junk", "random", "flip", "flip", "truncate", "extend", "client-data"]),
        st.binary(min_size=1, max_size=48),
        JSON_JUNK,
        st.integers(0, 4_096),
    ),
    min_size=1,
    max_size=3,
)
Mutation = tuple[str, str, bytes, Any, int]


def mutate(credential: dict[str, Any], mutations: list[Mutation]) -> dict[str, Any]:
    """`credential` (a deep copy) with each mutation applied to the part it names."""
    out = copy.deepcopy(credential)
    for part, action, noise, junk, position in mutations:
        holder: Any = out
        key = part
        if part.startswith("response."):
            holder, key = out.get("response"), part.removeprefix("response.")
        if not isinstance(holder, dict):
            continue
        current = holder.get(key)
        raw = unb64url(current) if isinstance(current, str) else None
        if action == "delete":
            holder.pop(key, None)
        elif action == "junk":
            holder[key] = junk
        elif action == "random" or raw is None:
            holder[key] = b64url(noise)
        elif action == "flip" and raw:
            flipped = bytearray(raw)
            flipped[position % len(flipped)] ^= noise[0] or 1
            holder[key] = b64url(bytes(flipped))
        elif action == "truncate":
            holder[key] = b64url(raw[: position % (len(raw) + 1)])
        elif action == "extend":
            holder[key] = b64url(raw + noise)
        elif action == "client-data":
            try:
                data = json.loads(raw)
            except ValueError:
                data = {}
            if isinstance(data, dict):
                data[("type", "challenge", "origin", "crossOrigin", "tokenBinding")[position % 5]] = junk
            holder[key] = b64url(encode(data))
    return out


def signed_bytes(credential: Any) -> tuple[Any, ...]:
    """What the signature covers (clientDataJSON and authenticatorData) and the signature itself."""
    response = credential.get("response") if isinstance(credential, dict) else None
    if not isinstance(response, dict):
        return (None, None, None)
    return tuple(response.get(part.removeprefix("response.")) for part in SIGNED)


REGISTRATION_PARTS = ("response.clientDataJSON", "response.attestationObject", "id", "rawId", "type", "response")
MAX_ENROLMENTS = 6  # a mutation the registration tolerates completes it: a new one costs a password hash


def for_registration(mutations: list[Mutation]) -> list[Mutation]:
    """The same mutations, aimed at what a registration carries (an assertion's parts map to the attestation)."""
    return [(part if part in REGISTRATION_PARTS else "response.attestationObject", *rest) for part, *rest in mutations]


def fresh_enrolment(target: Target) -> str:
    """A new pending enrolment: an invitation from the administrator, accepted with a password."""
    invitation = {"login": f"fuzz-{secrets.token_hex(4)}", "displayName": "Clé Fuzz"}
    body = post_graphql(target, encode({"query": INVITE_LINK, "variables": {"i": invitation}}), token=target.token)
    token = body["data"]["createInvitation"]["link"].split("/invitation/", 1)[1]
    started = check(post(target, "/auth/enrol/password", encode({"token": token, "password": PASSWORD})), graphql=False)
    enrolment: str = started["enrolment"]
    return enrolment


@settings(FUZZ, max_examples=30)
@given(mutations=MUTATIONS)
def test_mutated_passkey_credentials(target: Target, mutations: list[Mutation]) -> None:
    """Registration, sign-in and re-authentication with real credentials, mutated: never a 5xx, and a
    sign-in whose signed bytes changed never succeeds."""
    authenticator = target.authenticator
    options = post(target, "/auth/enrol/passkey/options", encode({"enrolment": target.enrolment}))
    if options.status_code == 404 and target.enrolments < MAX_ENROLMENTS:
        target.enrolment = fresh_enrolment(target)
        target.enrolments += 1
        options = post(target, "/auth/enrol/passkey/options", encode({"enrolment": target.enrolment}))
    if options.status_code == 200:
        # A key of its own: the sign-ins below keep using the one enrolled by the fixture.
        registering = SoftAuthenticator(origin=authenticator.origin, rp_id=authenticator.rp_id)
        created = mutate(registering.create(check(options, graphql=False)), for_registration(mutations))
        answer = post(target, "/auth/enrol/passkey", encode({"enrolment": target.enrolment, "credential": created}))
        check(answer, graphql=False)
    for begin_path, finish_path, token in (
        ("/auth/login/passkey/options", "/auth/login/passkey", None),
        ("/auth/reauth/passkey/options", "/auth/reauth/passkey", target.passkey_token),
    ):
        begin = check(post(target, begin_path, b"{}", token=token), graphql=False)
        assertion = authenticator.get(begin["publicKey"])
        mutated = mutate(assertion, mutations)
        answer = post(
            target, finish_path, encode({"challenge": begin["challenge"], "credential": mutated}), token=token
        )
        check(answer, graphql=False)
        if signed_bytes(mutated) != signed_bytes(assertion):
            assert answer.status_code >= 400, f"{finish_path} accepted a tampered assertion: {mutated}"


# --- 3. regression cases: the nastiest inputs, as minimal reproducers --------------------------------
#
# Grouped by cause: one test per group, which plays every case (as the administrator and anonymously
# for GraphQL) and lists every answer that fails an oracle. "limits" holds the nasty inputs the edge
# already answers well; every other group is a bug the fuzzing found, now fixed (kept as regressions).

Case = tuple[str, bytes, str | None]  # name, body, content type


def _gql(query: str, variables: Any = None, **extra: Any) -> bytes:
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    return encode({**payload, **extra})


CREATE_ESTABLISHMENT = "mutation($n: String!) { createEstablishment(name: $n, type: HOSPITAL) { id } }"
DECLARE = "mutation($i: DeclareCrisisInput!) { declareCrisis(input: $i) { id t0 } }"
GRAPHQL_REGRESSIONS: dict[str, list[Case]] = {
    "limits": [
        ("deep-braces", _gql("{" * 5_000 + "}" * 5_000), JSON_TYPE),
        ("deep-selection", _gql("{" + "a{" * 1_400 + "b" + "}" * 1_401), JSON_TYPE),
        ("deep-list-literal", _gql("{ crisis(id: " + "[" * 2_900 + "]" * 2_900 + ") { id } }"), JSON_TYPE),
        ("deep-object-literal", _gql("{ crisis(id: " + "{a:" * 900 + "1" + "}" * 900 + ") { id } }"), JSON_TYPE),
        ("nul-in-document", _gql("{ me\x00 { id } }"), JSON_TYPE),
        ("lone-surrogate-in-document", _gql("{ me { id } }\ud800"), JSON_TYPE),
        ("10k-aliases", _gql("{ " + " ".join(f"a{i}: __typename" for i in range(10_000)) + " }"), JSON_TYPE),
        ("21-aliases", _gql("{ " + " ".join(f"a{i}: __typename" for i in range(MAX_ALIASES + 1)) + " }"), JSON_TYPE),
        ("fragment-self-cycle", _gql("fragment A on Query { ...A } { ...A }"), JSON_TYPE),
        ("fragment-cycle", _gql("fragment A on Query { ...B } fragment B on Query { ...A } { ...A }"), JSON_TYPE),
        ("huge-int-literal", _gql("{ crisis(id: 1" + "0" * 5_000 + ") { id } }"), JSON_TYPE),
        ("huge-int-variable", _gql("query($x: ID!) { crisis(id: $x) { id } }", {"x": 10**100}), JSON_TYPE),
        ("introspection", _gql("{ __schema { types { name fields { name args { name } } } } }"), JSON_TYPE),
        ("over-the-body-limit", _gql("{ me { id } }" + " " * (MAX_QUERY_BYTES + 8_192)), JSON_TYPE),
        ("source-over-the-limit", _gql("{ me " + "{ id " * 3_000 + "}" * 3_001), JSON_TYPE),
        ("two-operations-no-name", _gql("query A { me { id } } query B { me { id } }"), JSON_TYPE),
        ("nul-in-id-argument", _gql("query($c: ID!) { crisis(id: $c) { id } }", {"c": "\x00"}), JSON_TYPE),
    ],
    # 500 text/plain: Strawberry's `json.loads` fails (RecursionError, ValueError, UnicodeDecodeError).
    "json-body-parser-500": [
        ("deep-json-variables", deep_json(5_000, "["), JSON_TYPE),
        ("deep-json-body", b"[" * 5_000 + b"]" * 5_000, JSON_TYPE),
        ("5000-digit-json-int", b'{"query": "{ me { id } }", "variables": {"x": 1' + b"0" * 5_000 + b"}}", JSON_TYPE),
        ("invalid-utf8-body", b'{"query": "{ me { id } }\xff"}', JSON_TYPE),
    ],
    # 500 text/plain: a JSON body that is a scalar (AttributeError: 'bool' object has no attribute 'get').
    "json-scalar-body-500": [
        ("json-null-body", b"null", JSON_TYPE),
        ("json-true-body", b"true", JSON_TYPE),
        ("json-number-body", b"1", JSON_TYPE),
        ("json-string-body", b'"{ me { id } }"', JSON_TYPE),
    ],
    # 400 text/plain: Strawberry's request errors, with no JSON body and no stable code.
    "request-errors-in-text": [
        ("not-json", b"{not json", JSON_TYPE),
        ("empty-body", b"", JSON_TYPE),
        ("batch", encode([{"query": "{ me { id } }"}]), JSON_TYPE),
        ("query-not-a-string", encode({"query": 5}), JSON_TYPE),
        ("query-null", encode({"query": None}), JSON_TYPE),
        ("query-empty", encode({"query": ""}), JSON_TYPE),
        ("variables-not-an-object", _gql("{ me { id } }", [1]), JSON_TYPE),
        ("extensions-not-an-object", _gql("{ me { id } }", extensions=[1]), JSON_TYPE),
        ("unknown-operation-name", _gql("{ me { id } }", operationName="Nope"), JSON_TYPE),
        ("only-a-fragment", _gql("fragment F on Query { me { id } }"), JSON_TYPE),
        ("text-plain", _gql("{ me { id } }"), "text/plain"),
        ("no-content-type", _gql("{ me { id } }"), None),
        ("form-urlencoded", b"query=%7Bme%7Bid%7D%7D", "application/x-www-form-urlencoded"),
    ],
    # `internal`: graphql-core 3.3 parses an empty selection set and Strawberry's depth limiter fails on it
    # while the validation rules are built (ValueError: max() arg is an empty sequence). Anonymous too.
    "empty-selection-set": [
        ("empty-operation", _gql("{ }"), JSON_TYPE),
        ("empty-sub-selection", _gql("{ me { } }"), JSON_TYPE),
        ("empty-mutation", _gql("mutation { }"), JSON_TYPE),
        ("empty-fragment", _gql("fragment F on Me { } { me { ...F } }"), JSON_TYPE),
    ],
    # `internal`: over HTTP, the subscription runs as a query (TypeError: Cannot return null for
    # non-nullable field Subscription.crisisEvents). Anonymous too.
    "subscription-over-http": [
        ("subscription", _gql('subscription { crisisEvents(crisisId: "x") { id } }'), JSON_TYPE),
    ],
    # `internal`: a NUL or a lone surrogate in a String reaches PostgreSQL (asyncpg CharacterNotInRepertoireError,
    # DataError). Administrator only (the anonymous answer is `unauthenticated`).
    "nul-or-surrogate-to-postgres": [
        ("nul-establishment-name", _gql(CREATE_ESTABLISHMENT, {"n": "a\x00b"}), JSON_TYPE),
        ("surrogate-establishment-name", _gql(CREATE_ESTABLISHMENT, {"n": "a\ud800"}), JSON_TYPE),
        ("nul-tenant-name", _gql('mutation { updateTenant(name: "a\\u0000b") { id } }'), JSON_TYPE),
        ("nul-passkey-name", _gql('mutation { renamePasskey(id: "AAAA", name: "a\\u0000b") }'), JSON_TYPE),
        (
            "nul-crisis-title",
            _gql(DECLARE, {"i": {"title": "a\x00b", "severity": "MINOR", "t0": "2026-11-23T05:00:00+00:00"}}),
            JSON_TYPE,
        ),
        (
            "nul-invitation-name",
            _gql(INVITE_LINK, {"i": {"login": f"nul-{secrets.token_hex(3)}", "displayName": "a\x00b"}}),
            JSON_TYPE,
        ),
    ],
    # `internal`: a t0 before 0001-01-01 in UTC passes validation, then asyncpg refuses it (date value out of range).
    "t0-out-of-range": [
        (
            "t0-before-year-1-in-utc",
            _gql(DECLARE, {"i": {"title": "T0", "severity": "MINOR", "t0": "0001-01-01T00:00:00+14:00"}}),
            JSON_TYPE,
        ),
    ],
}


def failures_of(play: Callable[[], Any], label: str) -> list[str]:
    try:
        play()
    except (AssertionError, pytest.fail.Exception) as exc:
        return [f"[{label}] {exc}"]
    return []


@pytest.mark.parametrize("group", list(GRAPHQL_REGRESSIONS))
def test_graphql_regressions(target: Target, group: str) -> None:
    failures = []
    for name, content, content_type in GRAPHQL_REGRESSIONS[group]:
        for who, token in (("administrator", target.token), ("anonymous", None)):

            def play(
                content: bytes = content, content_type: str | None = content_type, token: str | None = token
            ) -> None:
                body = post_graphql(target, content, content_type=content_type, token=token)
                if b"__schema" in content:  # introspection is allowed in development, to everyone
                    assert body["data"]["__schema"]["types"], body

            failures += failures_of(play, f"{name}, {who}")
    assert not failures, f"{len(failures)} failing answers:\n\n" + "\n\n".join(failures)


AUTH_BODIES_FOR_EVERY_ROUTE: dict[str, list[Case]] = {
    "limits": [
        ("70000-bytes", encode({"login": "x" * 70_000, "password": "p", "token": "t"}), JSON_TYPE),
        ("at-the-limit", b'{"a": "' + b"x" * (MAX_AUTH_BODY - 10) + b'"}', JSON_TYPE),
        ("not-json", b"{", JSON_TYPE),
        ("text-plain", b"{}", "text/plain"),
        ("json-null", b"null", JSON_TYPE),
    ],
    # 400 `{"detail": "There was an error parsing the body"}`: FastAPI's HTTPException, not the stable envelope.
    "body-parse-error-as-detail": [
        ("deep-json", b"[" * 5_000 + b"]" * 5_000, JSON_TYPE),
        ("5000-digit-int", b'{"code": 1' + b"0" * 5_000 + b"}", JSON_TYPE),
        ("invalid-utf8", b'{"code": "\xff"}', JSON_TYPE),
    ],
}
AUTH_REGRESSIONS: dict[str, list[tuple[str, str, bytes]]] = {
    "nul-elsewhere": [
        ("login-nul-password", "/auth/login", encode({"login": "nobody-here", "password": "\x00"})),
        ("invitation-nul", "/auth/invitation", encode({"token": "\x00" * 20})),
        ("enrol-password-nul", "/auth/enrol/password", encode({"token": "\x00" * 20, "password": "\x00"})),
        ("login-totp-nul", "/auth/login/totp", encode({"challenge": "\x00", "code": "\x00"})),
        ("passkey-options-nul", "/auth/login/passkey/options", encode({"challenge": "\x00"})),
    ],
    # 500 text/plain: the throttle key `acct:<login>` with a NUL reaches PostgreSQL (CharacterNotInRepertoireError).
    "nul-in-login-500": [
        ("login-nul", "/auth/login", encode({"login": "a\x00b", "password": "x"})),
    ],
}


@pytest.mark.parametrize("group", list(AUTH_BODIES_FOR_EVERY_ROUTE))
def test_auth_regressions_on_every_route(target: Target, group: str) -> None:
    failures = []
    for name, content, content_type in AUTH_BODIES_FOR_EVERY_ROUTE[group]:
        for path in AUTH_PATHS:

            def play(path: str = path, content: bytes = content, content_type: str | None = content_type) -> None:
                body = check(post(target, path, content, content_type=content_type), graphql=False)
                if len(content) > MAX_AUTH_BODY:
                    assert body["error"]["code"] == "invalid", body

            failures += failures_of(play, f"{name}, {path}")
    assert not failures, f"{len(failures)} failing answers:\n\n" + "\n\n".join(failures)


@pytest.mark.parametrize("group", list(AUTH_REGRESSIONS))
def test_auth_regressions(target: Target, group: str) -> None:
    failures = []
    for name, path, content in AUTH_REGRESSIONS[group]:
        failures += failures_of(partial(check, post(target, path, content), graphql=False), name)
    assert not failures, f"{len(failures)} failing answers:\n\n" + "\n\n".join(failures)


def test_edge_answers_unknown_routes_and_methods_with_a_stable_code(target: Target) -> None:
    """Found by the fuzzing: Starlette's `{"detail": ...}` (404, 405) and Strawberry's text (GET)."""
    failures = []
    for method, path in (
        ("GET", "/auth/login"),
        ("PUT", "/auth/logout"),
        ("POST", "/auth/nope"),
        ("GET", "/graphql?query={me{id}}"),
    ):
        try:
            response = target.http.request(method, path)
        except httpx.TransportError as exc:
            pytest.fail(f"{method} {path}: {exc!r}")
        failures += failures_of(partial(check, response, graphql=False), f"{method} {path}")
    assert not failures, f"{len(failures)} failing answers:\n\n" + "\n\n".join(failures)


def _chunks(content: bytes, size: int = 8_192) -> Iterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/auth/login", encode({"login": "x" * 70_000, "password": "p"})),
        ("/graphql", _gql("{ me { id } }" + " " * 70_000)),
    ],
    ids=["auth-login", "graphql"],
)
def test_body_limit_holds_without_content_length(target: Target, path: str, content: bytes) -> None:
    """Found by the fuzzing: a chunked body (no Content-Length) was read whole, whatever its size.

    The same 70,000 bytes must be refused the same way whether or not the client announced their length.
    """
    announced = post(target, path, content)
    framed = check(announced, graphql=path == "/graphql")
    try:
        response = target.http.post(path, content=_chunks(content), headers={"content-type": JSON_TYPE})
    except httpx.TransportError as exc:
        pytest.fail(f"POST {path} (chunked): {exc!r}")
    assert response.request.headers.get("transfer-encoding") == "chunked"
    chunked = check(response, graphql=path == "/graphql")
    assert framed["error"]["code"] == "invalid"
    assert announced.status_code == 413  # Payload Too Large, with the stable code `invalid`
    assert (response.status_code, chunked) == (announced.status_code, framed), (
        f"chunked body answered {response.status_code} {chunked}"
    )
