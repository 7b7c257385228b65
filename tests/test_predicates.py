"""Eligibility predicates can only filter: the allow-list, checked at config load without Spark."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from contact_spark.config import load_config
from contact_spark.config.imports import load_import_mapping
from contact_spark.config.loader import DEFAULT_CONFIG
from contact_spark.config.predicates import (
    ALLOWED_SUMMARY,
    PredicateError,
    check_predicate,
    predicate_columns,
)
from contact_spark.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# Import mappings (docs/import.md) are YAML files of another kind: named import_*.yaml.
IMPORT_MAPPINGS = sorted((ROOT / "conf").rglob("import_*.yaml"))
CONFIG_FILES = sorted(
    [
        *(p for p in (ROOT / "conf").rglob("*.yaml") if p not in IMPORT_MAPPINGS),
        ROOT / "contact_spark" / "config" / "default.yaml",
    ]
)
DOC_FILES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
# Not after a dot: "campaigns.where: …" is a key path quoted in an error message, not a predicate.
WHERE_LINE = re.compile(r"(?<!\.)\bwhere:\s*(?P<predicate>[^#}\n]+?)\s*}?\s*(?:#.*)?$", re.MULTILINE)


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        pytest.param(
            "reflect('java.lang.System', 'getProperty', 'user.name') IS NOT NULL",
            "reflect() calls Java methods",
            id="reflect",
        ),
        pytest.param(
            "java_method('java.lang.System', 'getenv', 'HOME') = 'x'",
            "java_method() calls Java methods",
            id="java_method",
        ),
        pytest.param(
            "propensity < 0.5 AND try_reflect('java.lang.Runtime', 'getRuntime') IS NULL",
            "try_reflect() calls Java methods",
            id="try_reflect",
        ),
        pytest.param(
            "EXISTS (SELECT * FROM parquet.`/etc/passwd`)",
            "a subquery (or a table or file read) is not a filter of the candidate row",
            id="subquery-reading-a-file",
        ),
        pytest.param(
            "customer_id IN (SELECT customer_id FROM customers)",
            "a subquery (or a table or file read) is not a filter of the candidate row",
            id="subquery-in",
        ),
        pytest.param(
            "propensity > (SELECT max(propensity) FROM propensities)",
            "a subquery (or a table or file read) is not a filter of the candidate row",
            id="scalar-subquery",
        ),
        pytest.param("my_udf(propensity) > 1", "my_udf() is an unknown function or a UDF", id="udf"),
        pytest.param(
            "input_file_name() = 'x'", "input_file_name() is an unknown function or a UDF", id="unknown"
        ),
        pytest.param("rand() < 0.5", "function rand() is not allowed", id="known-but-not-allowed"),
        pytest.param(
            "explode(array(1, 2)) = 1", "explode() is a generator (it makes rows), not a filter", id="explode"
        ),
        pytest.param(
            "size(explode(array(1))) > 0",
            "explode() is a generator (it makes rows), not a filter",
            id="explode-inside",
        ),
        pytest.param(
            "row_number() OVER (PARTITION BY customer_id ORDER BY propensity) = 1",
            "a window function (OVER …) is not a filter of one candidate row",
            id="window",
        ),
        pytest.param(
            "sum(propensity) > 1", "sum() is an aggregate, not a filter of one candidate row", id="aggregate"
        ),
        pytest.param(
            "size(transform(array(1), x -> x + 1)) > 0",
            "a lambda (higher-order function such as transform or filter) is not allowed",
            id="lambda-transform",
        ),
        pytest.param(
            "propensity < 0.1 -- AND segment = 'VIP'",
            "comments (-- or /* */) are not allowed: text after -- would be silently ignored",
            id="dash-comment",
        ),
        pytest.param(
            "propensity < 0.1 /* AND segment = 'VIP' */",
            "comments (-- or /* */) are not allowed: text after -- would be silently ignored",
            id="block-comment",
        ),
        pytest.param(
            "propensity < 0.1; SELECT 1",
            "';' is not allowed: give one expression, not statements",
            id="two-statements",
        ),
        pytest.param(
            "'${env:HOME}' = segment",
            "'${…}' (variable substitution) is not allowed in a predicate",
            id="variable-substitution",
        ),
        pytest.param(
            "segment = 'x\\' OR reflect(1) OR \\''",
            "backslashes are not allowed in a predicate (write [0-9] rather than \\d)",
            id="backslash",
        ),
        pytest.param(
            'segment = "VIP"', "write strings in single quotes: 'VIP', not \"…", id="double-quoted-string"
        ),
        pytest.param("segment = r'VIP'", "'r'VIP'' is not a plain string: write 'text'", id="raw-string"),
        pytest.param(
            "c.segment = 'VIP'",
            "'c.segment' is a qualified name: write the column name alone",
            id="qualified",
        ),
        pytest.param("segment[0] = 'V'", "'segment[0]' (Bracket) is not allowed", id="subscript"),
    ],
)
def test_a_predicate_of_a_refused_kind_is_refused_naming_the_kind(where: str, problem: str) -> None:
    with pytest.raises(PredicateError) as caught:
        check_predicate(where)
    assert str(caught.value) == f"{problem}; {ALLOWED_SUMMARY}"


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("", "the predicate is empty: give one, e.g. propensity < 0.01"),
        ("propensity <", "not a valid Spark SQL expression (Required keyword: 'expression' missing"),
    ],
)
def test_an_empty_or_broken_predicate_is_refused(where: str, problem: str) -> None:
    with pytest.raises(PredicateError) as caught:
        check_predicate(where)
    assert str(caught.value).startswith(problem)


def test_the_config_load_refuses_a_predicate_naming_the_rule_before_any_stage() -> None:
    rules = [
        {"name": "fine", "where": "propensity < 0.001"},
        {"name": "spy", "where": "reflect('java.lang.System', 'getProperty', 'user.name') IS NOT NULL"},
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(overrides={"eligibility": {"rules": rules}})
    assert caught.value.problems == [
        "eligibility.rules.1: eligibility rule 'spy': 'where' refused: reflect() calls Java methods; "
        + ALLOWED_SUMMARY
    ]


def test_a_refused_predicate_stops_the_job_with_one_line_and_exit_code_2() -> None:
    rules = "[{name: spy, where: \"reflect('java.lang.System', 'getProperty', 'user.name') IS NOT NULL\"}]"
    done = subprocess.run(
        [sys.executable, "jobs/run_pipeline.py", "--set", f"eligibility.rules={rules}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: invalid config {DEFAULT_CONFIG}: eligibility.rules.0: "
        f"eligibility rule 'spy': 'where' refused: reflect() calls Java methods; {ALLOWED_SUMMARY}"
    ]


@pytest.mark.parametrize(
    ("where", "columns"),
    [
        ("propensity < 0.001", ["propensity"]),
        ("segment <> 'SMALL_BUSINESS' OR channel = 'DEM'", ["segment", "channel"]),
        ("segment NOT IN ('VIP', 'SMALL_BUSINESS') AND campaign = 'X;Y--Z'", ["segment", "campaign"]),
        ("expected_value BETWEEN 0 AND 2.5", ["expected_value"]),
        ("segment LIKE 'SMALL%' OR segment RLIKE '^V[A-Z]+$'", ["segment"]),
        (
            "-propensity * 2 + 1 / 4 - contact_score % 3 > 0 AND contact_score div 2 = 1",
            ["propensity", "contact_score"],
        ),
        (
            "household_id IS NULL OR coalesce(churn_risk, true) OR nvl(outbound, false)",
            ["household_id", "churn_risk", "outbound"],
        ),
        (
            "isnull(segment) OR isnotnull(household_id) AND nvl2(segment, 1, 0) = 1",
            ["segment", "household_id"],
        ),
        (
            "CASE WHEN channel = 'TLS' THEN propensity < 0.05 ELSE propensity < 0.01 END",
            ["channel", "propensity"],
        ),
        ("if(channel = 'SMS', true, false)", ["channel"]),
        (
            "CAST(tenure_months AS INT) < 6 AND CAST(annual_value AS DECIMAL(10, 2)) > 100",
            ["tenure_months", "annual_value"],
        ),
        ("lower(trim(segment)) = 'vip' AND upper(ltrim(rtrim(channel))) = 'DEM'", ["segment", "channel"]),
        (
            "length(customer_id) > 3 AND substring(customer_id, 1, 2) = 'C0' AND substr(segment, 1, 1) = 'V'",
            ["customer_id", "segment"],
        ),
        (
            "concat(campaign, '/', channel) = 'X/DEM' OR concat_ws('-', campaign, channel) = 'X-DEM'",
            ["campaign", "channel"],
        ),
        (
            "date_add(signup_date, 30) > current_date() AND date_sub(current_date, 7) < signup_date",
            ["signup_date"],
        ),
        (
            "datediff(current_date(), signup_date) > 90 AND months_between(current_date(), signup_date) < 12",
            ["signup_date"],
        ),
        ("year(signup_date) = 2026 AND month(signup_date) = 1 AND day(signup_date) = 1", ["signup_date"]),
        (
            "add_months(signup_date, 1) < to_date('2027-01-01') AND last_day(signup_date) = signup_date",
            ["signup_date"],
        ),
        ("signup_date + INTERVAL 30 DAYS > DATE '2027-01-01'", ["signup_date"]),
        (
            "abs(round(propensity, 2) - floor(propensity)) > ceil(greatest(0, least(1, propensity)))",
            ["propensity"],
        ),
        ("nullif(segment, '') IS NOT NULL AND `segment` <=> 'VIP'", ["segment"]),
    ],
)
def test_a_filter_of_the_allowed_kinds_is_accepted_with_its_columns(where: str, columns: list[str]) -> None:
    check_predicate(where)
    assert predicate_columns(where) == columns


def shipped_predicates() -> list[tuple[str, str]]:
    """Every ``where:`` of conf/ and docs/, commented-out examples too."""
    found = []
    for path in [*CONFIG_FILES, *DOC_FILES]:
        for match in WHERE_LINE.finditer(path.read_text(encoding="utf-8")):
            # A double-quoted YAML value (an offer selector, campaigns: {where: "…"}) is its content.
            predicate = match["predicate"].removeprefix('"').removesuffix('"')
            found.append((str(path.relative_to(ROOT)), predicate))
    return found


def test_the_shipped_predicates_are_found() -> None:
    assert ("contact_spark/config/default.yaml", "propensity < 0.001") in shipped_predicates()
    assert ("conf/examples/catalogue_8.yaml", "expected_value < 0.05") in shipped_predicates()
    assert ("docs/eligibility.md", "segment <> 'SMALL_BUSINESS' OR channel = 'DEM'") in shipped_predicates()


@pytest.mark.parametrize(("source", "where"), shipped_predicates())
def test_every_shipped_predicate_is_accepted(source: str, where: str) -> None:
    check_predicate(where)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_loads(path: Path) -> None:
    assert load_config(path).run.horizon_months >= 1


@pytest.mark.parametrize("path", IMPORT_MAPPINGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_import_mapping_loads(path: Path) -> None:
    assert load_import_mapping(path).tables
