"""Rule predicates that can only filter: an allow-list checked on the parsed expression.

An eligibility rule's ``where`` is Spark SQL, and Spark SQL can do far more than filter:
``reflect``/``java_method`` call any static Java method, a subquery can read a file path,
a UDF runs code, a ``--`` comment silently hides the rest of the line. So the text is
parsed here, in pure Python (``sqlglot``, Spark dialect: no Spark session at config
load), and every node of the parsed expression must be of a kind this module lists:

* columns (unqualified names) and literals (numbers, strings, booleans, NULL, typed
  ``DATE '…'`` literals, intervals);
* comparisons, ``AND``/``OR``/``NOT``, ``IN (…)``, ``BETWEEN``, ``LIKE``/``ILIKE``/``RLIKE``,
  arithmetic (``+ - * / % div``), ``IS [NOT] NULL``, ``CASE WHEN``, ``if``, ``CAST``;
* the functions of :data:`ALLOWED_FUNCTIONS`.

Anything else is refused, including a node kind this module does not know (fail closed):
another function or a UDF, subqueries, generators, window functions, aggregates, lambdas,
comments, ``;``, ``${…}`` variable substitution, backslashes, and strings other than
``'single-quoted'`` (where two SQL parsers could disagree on where a string ends or what
it is). The column names are checked separately, by
:func:`predicate_columns`, once the customers table's schema is known.
"""

from __future__ import annotations

import re
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

_DIALECT = Spark()

#: The functions a predicate may call, as written in Spark SQL (for the docs and messages).
ALLOWED_FUNCTIONS: tuple[str, ...] = (
    "coalesce",
    "nvl",
    "ifnull",
    "nvl2",
    "nullif",
    "isnull",
    "isnotnull",
    "if",
    "abs",
    "round",
    "floor",
    "ceil",
    "greatest",
    "least",
    "lower",
    "upper",
    "trim",
    "ltrim",
    "rtrim",
    "length",
    "substring",
    "substr",
    "concat",
    "concat_ws",
    "left",
    "right",
    "current_date",
    "current_timestamp",
    "to_date",
    "date_add",
    "date_sub",
    "add_months",
    "datediff",
    "months_between",
    "last_day",
    "year",
    "month",
    "day",
    "dayofmonth",
)

# What the allowed Spark functions parse to. ``year(d)``, ``month(d)`` and ``datediff``
# wrap their arguments in TsOrDsToDate, the node ``to_date`` parses to.
_FUNCTION_NODES: tuple[type[exp.Expr], ...] = (
    exp.Coalesce,
    exp.Nvl2,
    exp.Nullif,
    exp.If,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Greatest,
    exp.Least,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Length,
    exp.Substring,
    exp.Concat,
    exp.ConcatWs,
    exp.DPipe,
    exp.Left,
    exp.Right,
    exp.CurrentDate,
    exp.CurrentTimestamp,
    exp.TsOrDsToDate,
    exp.TsOrDsAdd,
    exp.AddMonths,
    exp.DateDiff,
    exp.MonthsBetween,
    exp.LastDay,
    exp.Year,
    exp.Month,
    exp.Day,
    exp.DayOfMonth,
)
# Functions sqlglot does not model: kept by name (an unknown name is a UDF to refuse).
_NAMED_FUNCTIONS = frozenset({"isnull", "isnotnull"})

_OPERATOR_NODES: tuple[type[exp.Expr], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Not,
    exp.And,
    exp.Or,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.RegexpLike,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.Case,
    exp.Cast,
    exp.TryCast,
    exp.DataType,
    exp.DataTypeParam,
    exp.Interval,
)
_ALLOWED_NODES = _OPERATOR_NODES + _FUNCTION_NODES
_JAVA_CALLS = frozenset({"reflect", "java_method", "try_reflect"})

ALLOWED_SUMMARY = (
    "a predicate may use columns, literals, comparisons, AND/OR/NOT, IN, BETWEEN, LIKE/RLIKE, "
    "arithmetic, IS NULL, CASE WHEN, CAST and the functions " + ", ".join(ALLOWED_FUNCTIONS)
)


class PredicateError(ValueError):
    """A predicate is not a filter this module allows; the message says what and why."""


def _refusal(node: exp.Expr) -> tuple[int, str]:
    """What is wrong with a node outside the allow-list, in the user's terms, ranked (0 = worst)."""
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name in _JAVA_CALLS:
            return 0, f"{name}() calls Java methods"
        return 2, f"{name}() is an unknown function or a UDF"
    if isinstance(node, (exp.Query, exp.Subquery, exp.Table)):
        return 1, "a subquery (or a table or file read) is not a filter of the candidate row"
    if isinstance(node, exp.Window):
        return 3, "a window function (OVER …) is not a filter of one candidate row"
    if isinstance(node, exp.AggFunc):
        return 3, f"{node.sql_name().lower()}() is an aggregate, not a filter of one candidate row"
    if isinstance(node, exp.UDTF):
        name = node.sql_name() if isinstance(node, exp.Func) else type(node).__name__
        return 3, f"{name.lower()}() is a generator (it makes rows), not a filter"
    if isinstance(node, exp.Lambda):
        return 3, "a lambda (higher-order function such as transform or filter) is not allowed"
    if isinstance(node, (exp.Parameter, exp.Placeholder)):
        return 3, "a parameter or variable substitution is not allowed"
    if isinstance(node, exp.Func):
        return 4, f"function {node.sql_name().lower()}() is not allowed"
    return 5, f"'{node.sql(dialect=_DIALECT)[:60]}' ({type(node).__name__}) is not allowed"


def _refused(problem: str) -> PredicateError:
    return PredicateError(f"{problem}; {ALLOWED_SUMMARY}")


def _node_problem(node: exp.Expr) -> tuple[int, str] | None:
    if isinstance(node, exp.Var):
        # A unit such as DAY, which sqlglot also adds itself to date_add.
        allowed = node.arg_key == "unit" and isinstance(node.parent, (exp.Interval, exp.TsOrDsAdd))
        return None if allowed else (5, f"'{node.name}' is not a column or a literal")
    if isinstance(node, exp.Anonymous) and node.name.lower() in _NAMED_FUNCTIONS:
        return None
    if not isinstance(node, _ALLOWED_NODES):
        return _refusal(node)
    if isinstance(node, exp.Column) and (node.table or not isinstance(node.this, exp.Identifier)):
        return 5, f"'{node.sql(dialect=_DIALECT)}' is a qualified name: write the column name alone"
    return None


@lru_cache(maxsize=256)
def parse_predicate(text: str) -> exp.Expr:
    """Parse ``text`` and check it against the allow-list; raise PredicateError if refused."""
    if not text.strip():
        raise PredicateError("the predicate is empty: give one, e.g. propensity < 0.01")
    if "\\" in text:
        raise _refused("backslashes are not allowed in a predicate (write [0-9] rather than \\d)")
    if "${" in text:
        raise _refused("'${…}' (variable substitution) is not allowed in a predicate")
    try:
        tokens = _DIALECT.tokenize(text)
    except SqlglotError as exc:
        raise PredicateError(f"not a valid Spark SQL expression ({_describe(exc)})") from None
    for token in tokens:
        if token.comments:
            raise _refused("comments (-- or /* */) are not allowed: text after -- would be silently ignored")
        if token.token_type == TokenType.SEMICOLON:
            raise _refused("';' is not allowed: give one expression, not statements")
        if token.token_type != TokenType.STRING and "STRING" in token.token_type.name:
            raise _refused(f"'{text[token.start : token.end + 1]}' is not a plain string: write 'text'")
        if token.token_type == TokenType.STRING and text[token.start] != "'":
            # Spark reads "x" as a column when spark.sql.ansi.doubleQuotedIdentifiers is on.
            raise _refused(f"write strings in single quotes: '{token.text}', not {text[token.start]}…")
    try:
        trees = sqlglot.parse(text, read=_DIALECT)
    except SqlglotError as exc:
        raise PredicateError(f"not a valid Spark SQL expression ({_describe(exc)})") from None
    if len(trees) != 1 or trees[0] is None:
        raise PredicateError("give exactly one expression")
    tree = trees[0]
    # Every node is looked at; the worst problem is reported (a reflect() inside anything).
    problems = [p for p in (_node_problem(node) for node in tree.walk()) if p is not None]
    if problems:
        raise _refused(min(problems, key=lambda p: p[0])[1])
    return tree


def check_predicate(text: str) -> None:
    """Raise PredicateError unless ``text`` is one expression of the allowed kinds."""
    parse_predicate(text)


def predicate_columns(text: str) -> list[str]:
    """The column names a checked predicate reads, in the order they are written."""
    names: list[str] = []
    for column in parse_predicate(text).find_all(exp.Column, bfs=False):
        if column.name not in names:
            names.append(column.name)
    return names


def _describe(exc: SqlglotError) -> str:
    """sqlglot's message on one line, without its class names."""
    lines = str(exc).strip().splitlines()
    text = " ".join(lines[0].split()) if lines else type(exc).__name__
    return re.sub(r" for <class '[^']*'>", "", text)[:200]
