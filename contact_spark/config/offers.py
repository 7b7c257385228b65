"""Offer attributes and the predicates that select campaigns by them.

Every campaign (offer) has typed attributes: the built-in ``name`` (the campaign's key),
``family``, ``success_value`` and ``trigger_only``, plus the ones of its ``attributes:``
mapping (strings, numbers, booleans: ``product``, ``margin``, ``risk_class``, ...). A scope
that selects campaigns (a policy rule or one side of a pair rule, a capacity, a spread, an
eligibility rule, a trigger's suppress/boost) may give, instead of a list of names,

    campaigns: {where: "family = 'power' and margin > 50"}

The predicate is SQL as in Spark (the eligibility rules' language), narrowed to what an
attribute test needs: attribute names, literals, ``= <> < <= > >=``, ``IN (…)``,
``BETWEEN``, ``LIKE``, ``IS [NOT] NULL``, ``AND``/``OR``/``NOT`` and parentheses. A campaign
without an attribute has it NULL there, so a comparison with it is not true (SQL's
three-valued logic): ``margin > 50`` leaves out campaigns that have no margin.

The predicate is resolved at config load, here, in pure Python, to the list of campaign
names it selects (in the order of the ``campaigns`` section): the validated config holds
names only, so every enforcement point (solver, capacities, validator, baseline,
``contact_decisions``, real-time check) reads the same resolved list it always read. An
unknown attribute, a comparison of different types (``margin > '50'``) and a predicate
selecting no campaign are errors naming the rule and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from sqlglot import exp

from contact_spark.config.base import StrictModel
from contact_spark.config.predicates import PredicateError, parse_predicate

AttributeValue = bool | int | float | str
Kind = Literal["string", "number", "boolean"]
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Attributes every campaign has, from its own keys (``name`` is the campaign's key).
BUILTIN_ATTRIBUTES: dict[str, Kind] = {
    "name": "string",
    "family": "string",
    "success_value": "number",
    "trigger_only": "boolean",
}
ALLOWED = (
    "an offer predicate may use attribute names, literals ('text', numbers, true/false), "
    "= <> < <= > >=, IN (…), BETWEEN, LIKE, IS [NOT] NULL, AND/OR/NOT and parentheses"
)


class SelectorError(ValueError):
    """A campaign selector cannot be resolved; the message says which key and how to fix it."""


class OfferSelector(StrictModel):
    """``{where: "<predicate on offer attributes>"}``: the campaigns the predicate is true for."""

    where: str = Field(description="Predicate on offer attributes, e.g. family = 'power' and margin > 50.")

    @field_validator("where")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            _check_shape(parse_predicate(value))
        except PredicateError as exc:
            raise ValueError(str(exc)) from None
        return value


def kind_of(value: AttributeValue) -> Kind:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def attribute_table(campaigns: Mapping[str, Any]) -> dict[str, dict[str, AttributeValue | None]]:
    """Campaign → attribute → value (built-ins and the campaign's ``attributes``), in config order.

    ``campaigns`` maps names to validated :class:`~contact_spark.config.models.CampaignSettings`."""
    return {
        name: {
            "name": name,
            "family": c.family,
            "success_value": c.success_value,
            "trigger_only": c.trigger_only,
            **c.attributes,
        }
        for name, c in campaigns.items()
    }


def attribute_kinds(table: Mapping[str, Mapping[str, AttributeValue | None]]) -> dict[str, Kind]:
    """Attribute → its one type over every campaign; SelectorError naming both campaigns when
    an attribute is a string on one campaign and a number (or a boolean) on another."""
    kinds: dict[str, Kind] = dict(BUILTIN_ATTRIBUTES)
    first: dict[str, str] = {}
    for campaign, attrs in table.items():
        for key, value in attrs.items():
            if key in BUILTIN_ATTRIBUTES or value is None:
                continue
            kind = kind_of(value)
            if key in first and kinds[key] != kind:
                raise SelectorError(
                    f"campaigns.{campaign}.attributes.{key} is a {kind} but campaigns.{first[key]}"
                    f".attributes.{key} is a {kinds[key]}: give {key} the same type on every campaign"
                )
            kinds.setdefault(key, kind)
            first.setdefault(key, campaign)
    return kinds


# ----------------------------------------------------------------------------- checking
_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}


def _check_shape(node: exp.Expr) -> None:
    """Refuse every node kind the evaluator below does not handle (fail closed)."""
    allowed: tuple[type[exp.Expr], ...] = (
        exp.Column,
        exp.Identifier,
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Paren,
        exp.Not,
        exp.And,
        exp.Or,
        exp.In,
        exp.Between,
        exp.Is,
        exp.Like,
        exp.Neg,
        *_COMPARISONS,
    )
    for sub in node.walk():
        if not isinstance(sub, allowed):
            raise PredicateError(f"'{sub.sql()[:60]}' is not an attribute test; {ALLOWED}")
        if isinstance(sub, exp.Neg) and not (isinstance(sub.this, exp.Literal) and not sub.this.is_string):
            raise PredicateError(f"'{sub.sql()[:60]}': a minus sign goes before a number only; {ALLOWED}")
        if isinstance(sub, exp.Is) and not isinstance(sub.expression, exp.Null):
            raise PredicateError(f"'{sub.sql()[:60]}': IS is for IS NULL / IS NOT NULL only; {ALLOWED}")
        if isinstance(sub, exp.In) and (sub.args.get("query") or sub.args.get("unnest")):
            raise PredicateError(f"'{sub.sql()[:60]}': IN takes a list of literals; {ALLOWED}")


class _Typer:
    """Static types of a predicate's nodes, against the configured attributes."""

    def __init__(self, kinds: Mapping[str, Kind]) -> None:
        self.kinds = kinds

    def kind(self, node: exp.Expr) -> Kind | None:
        """The node's type; None for NULL. SelectorError on an unknown attribute or a mismatch."""
        if isinstance(node, exp.Paren):
            return self.kind(node.this)
        if isinstance(node, exp.Column):
            name = node.name.lower()
            if name not in self.kinds:
                raise SelectorError(
                    f"'{node.name}' is not an offer attribute (known: {', '.join(sorted(self.kinds))}); "
                    "give campaigns an attribute under campaigns.<NAME>.attributes"
                )
            return self.kinds[name]
        if isinstance(node, exp.Literal):
            return "string" if node.is_string else "number"
        if isinstance(node, exp.Neg):
            return "number"
        if isinstance(node, exp.Boolean):
            return "boolean"
        if isinstance(node, exp.Null):
            return None
        if isinstance(node, (exp.And, exp.Or)):
            self.boolean(node.this)
            self.boolean(node.expression)
        elif isinstance(node, exp.Not):
            self.boolean(node.this)
        elif isinstance(node, exp.Is):
            self.kind(node.this)
        elif isinstance(node, exp.In):
            for item in node.expressions:
                self.same(node.this, item)
        elif isinstance(node, exp.Between):
            self.same(node.this, node.args["low"])
            self.same(node.this, node.args["high"])
        elif isinstance(node, exp.Like):
            for side in (node.this, node.expression):
                if self.kind(side) not in ("string", None):
                    raise SelectorError(f"'{node.sql()}': LIKE compares text: use = or < on {side.sql()}")
        else:  # a comparison (the shape check admits nothing else)
            self.same(node.this, node.expression)
        return "boolean"

    def boolean(self, node: exp.Expr) -> None:
        kind = self.kind(node)
        if kind not in ("boolean", None):
            raise SelectorError(
                f"'{node.sql()}' is a {kind}, not a condition: compare it, e.g. {node.sql()} = …"
            )

    def same(self, left: exp.Expr, right: exp.Expr) -> None:
        a, b = self.kind(left), self.kind(right)
        if a is None or b is None or a == b:
            return
        column, other = (left, right) if isinstance(left, exp.Column) else (right, left)
        if not isinstance(column, exp.Column):
            raise SelectorError(f"'{left.sql()}' and '{right.sql()}' have different types ({a}, {b})")
        what = self.kinds[column.name.lower()]
        if what == "number" and isinstance(other, exp.Literal) and other.is_string:
            fix = f"write {other.this} without quotes"
        elif what == "string" and isinstance(other, (exp.Literal, exp.Neg)):
            fix = f"quote it: '{other.sql()}'"
        else:
            fix = f"compare {column.name} with a {what}"
        raise SelectorError(
            f"'{column.name}' is a {what} attribute but is compared with {other.sql()} "
            f"(a {self.kind(other)}): {fix}"
        )


# --------------------------------------------------------------------------- evaluation
def _value(node: exp.Expr, attrs: Mapping[str, Any]) -> Any:
    """SQL value of ``node`` for one campaign (None = NULL; three-valued logic)."""
    if isinstance(node, exp.Paren):
        return _value(node.this, attrs)
    if isinstance(node, exp.Column):
        return attrs.get(node.name.lower())
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else float(node.this)
    if isinstance(node, exp.Neg):
        return -float(node.this.this)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.And):
        a, b = _value(node.this, attrs), _value(node.expression, attrs)
        return False if a is False or b is False else (None if a is None or b is None else True)
    if isinstance(node, exp.Or):
        a, b = _value(node.this, attrs), _value(node.expression, attrs)
        return True if a is True or b is True else (None if a is None or b is None else False)
    if isinstance(node, exp.Not):
        v = _value(node.this, attrs)
        return None if v is None else not v
    if isinstance(node, exp.Is):
        return _value(node.this, attrs) is None
    if isinstance(node, exp.In):
        v = _value(node.this, attrs)
        items = [_value(i, attrs) for i in node.expressions]
        if v is None:
            return None
        if any(v == i for i in items if i is not None):
            return True
        return None if any(i is None for i in items) else False
    if isinstance(node, exp.Between):
        v, low, high = (
            _value(node.this, attrs),
            _value(node.args["low"], attrs),
            _value(node.args["high"], attrs),
        )
        if v is None or low is None or high is None:
            return None
        return bool(low <= v <= high)
    if isinstance(node, exp.Like):
        v, pattern = _value(node.this, attrs), _value(node.expression, attrs)
        if v is None or pattern is None:
            return None
        regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
        hit = re.fullmatch(regex, v, flags=re.DOTALL) is not None
        return not hit if node.args.get("negate") else hit
    a, b = _value(node.this, attrs), _value(node.expression, attrs)
    if a is None or b is None:
        return None
    op = _COMPARISONS[type(node)]
    return {"=": a == b, "<>": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def select_campaigns(
    where: str, table: Mapping[str, Mapping[str, AttributeValue | None]], kinds: Mapping[str, Kind]
) -> list[str]:
    """The campaigns (in ``table``'s order) for which ``where`` is true.

    SelectorError, saying how to fix it, on an unknown attribute, a type mismatch, or a
    predicate that selects no campaign."""
    try:
        tree = parse_predicate(where)
        _check_shape(tree)
    except PredicateError as exc:
        raise SelectorError(str(exc)) from None
    _Typer(kinds).boolean(tree)
    # Bool attributes compare as Python bools; ints and floats as numbers (1 = 1.0).
    rows = {
        c: {k: (float(v) if kind_of(v) == "number" else v) for k, v in a.items() if v is not None}
        for c, a in table.items()
    }
    chosen = [c for c, attrs in rows.items() if _value(tree, attrs) is True]
    if not chosen:
        used = sorted({col.name.lower() for col in tree.find_all(exp.Column)})
        values = []
        for name in used:
            seen = sorted({str(a[name]) for a in table.values() if a.get(name) is not None})
            if kinds.get(name) == "string" and name != "name":
                values.append(f"{name} takes {', '.join(seen) if seen else 'no value on any campaign'}")
        hint = f" ({'; '.join(values)})" if values else ""
        raise SelectorError(f'"{where}" selects no campaign: check the attribute values{hint}')
    return chosen


def is_selector(value: Any) -> bool:
    """Whether a raw (YAML) scope value is a ``{where: ...}`` selector rather than names."""
    return isinstance(value, Mapping)


def resolve_raw(
    value: Any, table: Mapping[str, Mapping[str, AttributeValue | None]], kinds: Mapping[str, Kind]
) -> Any:
    """A raw scope value with a selector resolved to its names; anything else unchanged."""
    if not is_selector(value):
        return value
    try:
        selector = OfferSelector.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key: a selector has the one key 'where', e.g. {where: \"family = 'power'\"}"
        elif err["type"] == "missing":
            msg = 'required key is missing: write {where: "<predicate on offer attributes>"}'
        raise SelectorError(f"{where + ': ' if where else ''}{msg}") from None
    try:
        return select_campaigns(selector.where, table, kinds)
    except SelectorError as exc:
        raise SelectorError(f"where: {exc}") from None
