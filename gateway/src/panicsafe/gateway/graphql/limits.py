"""What one GraphQL request may cost the gateway, and what its errors may reveal.

Every request is bounded before it runs: its size and token count while parsing, its depth, its
aliases and its static cost while validating. Parsed documents and validation results are cached,
so a client repeating the same operation pays for neither again.

The static cost counts 1 per field; the sub-selection of a field is multiplied by its `first` or
`limit` argument (a literal, or a variable), else by the argument's declared default, else by
`LIST_MULTIPLIER` for a list field. `CostLimitRule` is a validation rule and its result is cached
per document, so it cannot see the request's variables: a variable counts as its default in the
operation, else as the argument's default, else as `UNKNOWN_MULTIPLIER`. `CostLimiter` then checks
the same cost with the request's actual variable values just before execution, so a small default
cannot hide a large value.

Errors are masked on the way out: a `ServiceError` keeps its message and stable code, a request
error (syntax, validation, variables) keeps its message with code `invalid`, and anything else
becomes "Erreur interne" with code `internal`: no exception text, no stack trace. Strawberry logs
the original error before it is masked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    Undefined,
    ValidationRule,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from panicsafe.contracts.errors import ErrorCode
from panicsafe.core.errors import ServiceError

MAX_QUERY_BYTES = 16_384
MAX_DEPTH = 12
MAX_ALIASES = 20
MAX_TOKENS = 3_000
MAX_COST = 5_000

CACHE_SIZE = 1024
LIST_MULTIPLIER = 10
"""A list field without `first`/`limit` (given or declared with a default) counts its items as 10."""
UNKNOWN_MULTIPLIER = 100
"""A variable `first`/`limit` whose value is unknown during validation counts as 100."""
MAX_MULTIPLIER = 1_000_000
"""Larger `first`/`limit` values are counted as this (the query is refused either way)."""
MAX_NESTING = 100
"""Selections nested deeper than this are refused outright (the depth limit is far lower)."""

PAGE_ARGUMENTS = ("first", "limit")
INTERNAL_MESSAGE = "Erreur interne"
_KNOWN_CODES = frozenset(code.value for code in ErrorCode)
# Strawberry's own request errors: the operation is missing, unknown or not allowed here.
_REQUEST_EXCEPTIONS = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


# --- static cost -----------------------------------------------------------------------------


def _clamp(value: int) -> int:
    return min(max(value, 1), MAX_MULTIPLIER)


def _int_literal(node: IntValueNode) -> int:
    digits = node.value.lstrip("-")
    if len(digits) > len(str(MAX_MULTIPLIER)):  # never convert a 5,000-digit literal
        return 1 if node.value.startswith("-") else MAX_MULTIPLIER
    return _clamp(int(node.value))


def _int_runtime(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _clamp(value)
    if isinstance(value, float) and value.is_integer():
        return _clamp(int(value))
    return None


def _declared_default(argument: GraphQLArgument | None) -> int | None:
    if argument is None:
        return None
    default = argument.default
    if default is not None:
        if isinstance(default.literal, IntValueNode):
            return _int_literal(default.literal)
        if default.value is not Undefined:
            return _int_runtime(default.value)
    if argument.default_value is not Undefined:
        return _int_runtime(argument.default_value)
    return None


class CostCounter:
    """Static cost of operations of one document, given the request's variables when known."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self._variable_defaults: dict[str, int] = {}
        self._fragment_costs: dict[tuple[str, int | None], int] = {}
        self._carried: int | None = None  # the page size a page object hands to its lists
        self._open_fragments: set[str] = set()

    def operation_cost(self, operation: OperationDefinitionNode) -> int:
        self._variable_defaults = {
            definition.variable.name.value: _int_literal(definition.default_value)
            for definition in operation.variable_definitions or ()
            if isinstance(definition.default_value, IntValueNode)
        }
        self._fragment_costs = {}  # fragments may use this operation's variables
        root = self.schema.get_root_type(operation.operation)
        return self._selections(root, operation.selection_set, 0)

    def _selections(self, parent: GraphQLNamedType | None, selection_set: SelectionSetNode | None, nesting: int) -> int:
        if selection_set is None:
            return 0
        if nesting > MAX_NESTING:
            return MAX_COST + 1
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(parent, selection, nesting)
            elif isinstance(selection, InlineFragmentNode):
                condition = self._type(selection.type_condition) if selection.type_condition else parent
                total += self._selections(condition, selection.selection_set, nesting + 1)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, nesting)
        return total

    def _fragment(self, name: str, nesting: int) -> int:
        known = self._fragment_costs.get((name, self._carried))
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self._open_fragments:
            return 0  # unknown fragments and cycles are reported by the standard rules
        self._open_fragments.add(name)
        try:
            cost = self._selections(self._type(fragment.type_condition), fragment.selection_set, nesting + 1)
        finally:
            self._open_fragments.discard(name)
        self._fragment_costs[(name, self._carried)] = cost
        return cost

    def _type(self, node: NamedTypeNode) -> GraphQLNamedType | None:
        return self.schema.get_type(node.name.value)

    def _field(self, parent: GraphQLNamedType | None, node: FieldNode, nesting: int) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 1  # __typename; introspection is refused outside development
        definition: GraphQLField | None = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(name)
        if definition is None:  # an unknown field: reported by the standard rules
            return 1 + self._selections(None, node.selection_set, nesting + 1)
        if node.selection_set is None:
            return 1
        page_size = self._page_size(node, definition)
        # A page object (`logbook(first: 50) { entries { ... } }`) counts once; the lists directly in
        # it hold `first` items. Any other list counts `first`, or 10 when it takes no page argument.
        carried, self._carried = self._carried, None
        try:
            if is_list_type(get_nullable_type(definition.type)):
                multiplier = page_size or carried or LIST_MULTIPLIER
            else:
                multiplier = 1
                self._carried = page_size
            children = self._selections(get_named_type(definition.type), node.selection_set, nesting + 1)
        finally:
            self._carried = carried
        return 1 + multiplier * children

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        values = [
            value
            for name in PAGE_ARGUMENTS
            if name in given and (value := self._argument_value(given[name], definition.args.get(name))) is not None
        ]
        if not values:
            values = [
                value for name in PAGE_ARGUMENTS if (value := _declared_default(definition.args.get(name))) is not None
            ]
        return max(values) if values else None

    def _argument_value(self, value: ValueNode, argument: GraphQLArgument | None) -> int | None:
        if isinstance(value, IntValueNode):
            return _int_literal(value)
        if not isinstance(value, VariableNode):
            return None  # null or a wrong type: the resolver's default applies
        name = value.name.value
        if self.variables is not None and name in self.variables:
            runtime = _int_runtime(self.variables[name])
            if runtime is not None:
                return runtime
            if self.variables[name] is not None:
                return UNKNOWN_MULTIPLIER  # not an int: coercion will refuse it anyway
        if name in self._variable_defaults:
            return self._variable_defaults[name]
        declared = _declared_default(argument)
        return declared if declared is not None else UNKNOWN_MULTIPLIER


def cost_error(cost: int, operation: OperationDefinitionNode | None = None) -> GraphQLError:
    return GraphQLError(
        f"query too costly (cost {cost} > {MAX_COST})",
        operation,
        extensions={"code": ErrorCode.INVALID.value},
    )


class CostLimitRule(ValidationRule):
    """Refuses every operation whose static cost exceeds `MAX_COST` (variables at their defaults)."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: object) -> None:
        context = self.context
        fragments = {
            definition.name.value: definition
            for definition in context.document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        cost = CostCounter(context.schema, fragments).operation_cost(node)
        if cost > MAX_COST:
            context.report_error(cost_error(cost, node))


def _selected_operation(operations: list[OperationDefinitionNode], name: str | None) -> OperationDefinitionNode | None:
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name is not None and op.name.value == name), None)


class CostLimiter(SchemaExtension):
    """The same cost, just before execution, with the variable values of the request (only when a
    `first` or `limit` argument takes a variable: otherwise the cost is the one validated)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and _facts(context.query, document).page_variables:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            operation = _selected_operation(operations, context.operation_name)
            if operation is not None and operation.variable_definitions:
                fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
                counter = CostCounter(context.schema._schema, fragments, context.variables or {})
                cost = counter.operation_cost(operation)
                if cost > MAX_COST:
                    raise cost_error(cost, operation)
        yield


# --- parsing limits ----------------------------------------------------------------------------


class OperationLimits(SchemaExtension):
    """Sets the bounds of parsing and validation: documents longer than `MAX_QUERY_BYTES` characters
    are refused before lexing (WebSocket subscriptions do not go through the HTTP body limit), those
    of more than `MAX_TOKENS` tokens while parsing, and `rules` are added to the validation rules.

    One extension for the three (rather than Strawberry's `MaxTokensLimiter` and `AddValidationRules`
    beside a size limiter): every extension costs every request its own hooks.
    """

    def __init__(self, rules: Sequence[type[ASTValidationRule]]) -> None:
        super().__init__()
        self.rules = tuple(rules)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        options = cast("dict[str, Any]", context.parse_options)
        options["max_source_length"] = MAX_QUERY_BYTES
        options["max_tokens"] = MAX_TOKENS
        context.validation_rules = (*context.validation_rules, *self.rules)
        yield


class InputSanity(SchemaExtension):
    """Refuses, before validation, what must never reach a resolver or PostgreSQL: empty selection
    sets (graphql-core parses `{ }`, and the depth rule then fails), and NUL characters or lone
    surrogates in any string, inline or in variables.

    The document is walked once per text (see `_facts`); variables are checked on every request.
    """

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        if document is not None:
            problem = _facts(self.execution_context.query, document).problem
            if problem is not None:
                raise ServiceError(ErrorCode.INVALID, problem)
        if _unsafe_value(self.execution_context.variables):
            raise ServiceError(ErrorCode.INVALID, "Caractère interdit dans une variable (NUL ou demi-paire).")
        yield


@dataclass(frozen=True)
class _DocumentFacts:
    """What the checks of each request need to know of a document (not of its variables)."""

    problem: str | None  # why `InputSanity` refuses it, if it does
    page_variables: bool  # whether a `first` or `limit` argument takes a variable (see `CostLimiter`)


# By document text, oldest first: like parsed documents and validation results, `CACHE_SIZE` of them.
_FACTS: dict[str, _DocumentFacts] = {}


def _facts(query: str | None, document: DocumentNode) -> _DocumentFacts:
    """The facts of `document`, the parsed `query`: one walk per text."""
    facts = _FACTS.get(query) if query is not None else None
    if facts is None:
        facts = _facts_of(document)
        if query is not None:
            _FACTS[query] = facts
            if len(_FACTS) > CACHE_SIZE:
                del _FACTS[next(iter(_FACTS))]
    return facts


def _facts_of(document: DocumentNode) -> _DocumentFacts:
    problem = None
    page_variables = False
    for node in _walk(document):
        if isinstance(node, SelectionSetNode) and not node.selections:
            problem = "Sélection vide : demandez au moins un champ."
        elif isinstance(node, StringValueNode) and _unsafe_text(node.value):
            problem = "Caractère interdit dans une chaîne (NUL ou demi-paire)."
        elif isinstance(node, ArgumentNode) and node.name.value in PAGE_ARGUMENTS:
            page_variables = page_variables or isinstance(node.value, VariableNode)
        if problem is not None:
            break
    return _DocumentFacts(problem, page_variables)


def _walk(node: Any) -> Iterator[Any]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for key in getattr(current, "keys", ()):
            value = getattr(current, key, None)
            if isinstance(value, tuple | list):
                stack.extend(v for v in value if hasattr(v, "keys"))
            elif hasattr(value, "keys") and not isinstance(value, dict):
                stack.append(value)


def _unsafe_text(text: str) -> bool:
    return "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _unsafe_value(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return True
    if isinstance(value, str):
        return _unsafe_text(value)
    if isinstance(value, dict):
        return any(_unsafe_value(k, depth + 1) or _unsafe_value(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_unsafe_value(v, depth + 1) for v in value)
    return False


# --- error masking -----------------------------------------------------------------------------


def _service_error(error: BaseException | None) -> ServiceError | None:
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, ServiceError):
            return error
        error = error.original_error if isinstance(error, GraphQLError) else None
        seen += 1
    return None


def _stated_code(error: GraphQLError) -> str | None:
    code = (error.extensions or {}).get("code")
    return code if isinstance(code, str) and code in _KNOWN_CODES else None


def _rebuild(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        original_error=None,
        extensions=extensions,
    )


def mask_error(error: GraphQLError) -> GraphQLError:
    """What the client may see of `error`: a stable code, and a message only when it is meant for it."""
    service = _service_error(error)
    if service is not None:
        extensions: dict[str, Any] = {"code": service.code.value}
        if service.fields:
            extensions["fields"] = [field.model_dump() for field in service.fields]
        return _rebuild(error, service.message, extensions)
    original = error.original_error
    if original is None or (isinstance(original, GraphQLError) and error.path is None):
        # Syntax, validation and variable errors, or an error already masked.
        kept: dict[str, Any] = {"code": _stated_code(error) or ErrorCode.INVALID.value}
        fields = (error.extensions or {}).get("fields")
        if original is None and isinstance(fields, list):
            kept["fields"] = fields
        return _rebuild(error, error.message, kept)
    if isinstance(original, _REQUEST_EXCEPTIONS):
        return _rebuild(error, error.message, {"code": ErrorCode.INVALID.value})
    if isinstance(original, GraphQLError) and (code := _stated_code(original)) is not None:
        return _rebuild(error, error.message, {"code": code})  # raised on purpose, with a code
    return _rebuild(error, INTERNAL_MESSAGE, {"code": ErrorCode.INTERNAL.value})


class ErrorMasking(MaskErrors):
    """`MaskErrors` with `mask_error`, for results and for each subscription event.

    `MaskErrors` alone misses the errors raised by an extension hook before it yields (a parse
    error of the parser cache, a refusal in `on_execute`, an exception in another extension):
    Strawberry builds that result after the operation hooks have exited. It still asks every
    extension for its results, with the result's own error list in `pre_execution_errors`, so
    the list is masked there too, in place. Masking twice changes nothing.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda _error: True, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return mask_error(error)

    def get_results(self) -> dict[str, Any]:
        errors = self.execution_context.pre_execution_errors
        if errors:
            errors[:] = [mask_error(error) for error in errors]
        return {}


def error_masking_extension() -> SchemaExtension:
    """A fresh masking extension (pass the function itself to `strawberry.Schema`)."""
    return ErrorMasking()


# --- assembly ----------------------------------------------------------------------------------

# Rule classes are built once: the validation cache keys on them, and QueryDepthLimiter and
# MaxAliasesLimiter build a new class per instance.
_LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(MAX_ALIASES).validation_rules,
    CostLimitRule,
)
_PRODUCTION_RULES = (*_LIMIT_RULES, NoSchemaIntrospectionCustomRule)  # = DisableIntrospection()

ExtensionFactory = Callable[[], SchemaExtension]


def graphql_extensions(*, development: bool) -> list[ExtensionFactory]:
    """Factories for `strawberry.Schema(extensions=...)`: a fresh extension per request.

    Error masking, size and token limits, parser and validation caches (1024 documents each),
    depth, aliases and cost limits, the cost with actual variables, and, unless `development`,
    no introspection.
    """
    rules = _LIMIT_RULES if development else _PRODUCTION_RULES
    return [
        error_masking_extension,
        lambda: OperationLimits(rules),
        InputSanity,
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        CostLimiter,
    ]
