"""The import mapping (docs/import.md): a mistake is one line naming the file, the table and the column.

Pure Python, no Spark: the mapping is checked against the input contract before any source is read.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from contact_spark.config.imports import JdbcSource, load_import_mapping, mapping_from_dict
from contact_spark.errors import ConfigError
from contact_spark.io.import_plan import check_mapping
from contact_spark.io.masking import mask_value

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "conf" / "examples" / "import_crm_export.yaml"
CHANNELS = ["DEM", "SMS", "TLS"]
CSV = {"format": "csv", "path": "customers.csv", "delimiter": ";"}
CUSTOMERS = {
    "customer_id": "CUST_ID",
    "household_id": "HH",
    "segment": "SEG",
    "churn_risk": "CHURN",
    "outbound": "OUT",
    "privacy_consent": "PRIVACY",
    "optout_dem": "NO_DEM",
    "optout_sms": "NO_SMS",
    "optout_tls": "NO_TLS",
}


def _error(data: dict[str, Any]) -> str:
    """The one-line message of a mapping that must be refused (at load or against the contract)."""
    with pytest.raises(ConfigError) as info:
        check_mapping(mapping_from_dict(data, source="crm.yaml"), CHANNELS, "crm.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def _customers(**changes: Any) -> dict[str, Any]:
    table: dict[str, Any] = {"source": CSV, "columns": dict(CUSTOMERS)}
    table.update(changes)
    return {"customers": table}


def test_the_shipped_example_loads_and_fits_the_contract() -> None:
    mapping = load_import_mapping(EXAMPLE)
    plans = check_mapping(mapping, CHANNELS, str(EXAMPLE))
    assert list(plans) == ["customers", "contacts", "contact_history", "propensities"]
    assert [c.name for c in plans["customers"].columns][-3:] == ["optout_tls", "birth_date", "region"]
    assert plans["customers"].key == ("customer_id",) and plans["contact_history"].key == ()
    # Paths are resolved against the mapping file's folder.
    assert mapping.customers is not None
    assert mapping.customers.source.path == str(EXAMPLE.parent / "crm_export" / "customers.csv")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "crm.yaml: <root>: map at least one input table"),
        (
            {"customer": {"source": CSV}},
            "customer: unknown input table (the input tables are customers, contacts",
        ),
        (
            _customers(columns={**CUSTOMERS, "custmer_segment": "SEG"}),
            "customers.columns.custmer_segment: not a column of the customers contract (customer_id, "
            "household_id, segment, churn_risk, outbound, privacy_consent, optout_dem, optout_sms, "
            "optout_tls) (a column of your own goes under extra_columns)",
        ),
        (
            _customers(columns={k: v for k, v in CUSTOMERS.items() if k != "optout_tls"}),
            "customers.columns.optout_tls: required by the contract but neither mapped nor a constant: "
            "map it under customers.columns or give it under customers.constants",
        ),
        (
            _customers(
                constants={"optout_tls": "no"},
                columns={k: v for k, v in CUSTOMERS.items() if k != "optout_tls"},
            ),
            "customers.constants.optout_tls: 'no' does not fit boolean: give true or false",
        ),
        (
            _customers(
                constants={"customer_id": None},
                columns={k: v for k, v in CUSTOMERS.items() if k != "customer_id"},
            ),
            "customers.constants.customer_id: None does not fit string: null is not allowed",
        ),
        (
            _customers(constants={"optout_tls": False}),
            "customers: column optout_tls is both mapped and a constant: keep one",
        ),
        (
            _customers(columns={**CUSTOMERS, "churn_risk": {"column": "CHURN", "pattern": "dd/MM/yyyy"}}),
            "customers.columns.churn_risk: a pattern applies to dates and timestamps, the column is boolean",
        ),
        (
            _customers(columns={**CUSTOMERS, "segment": {"column": "SEG", "type": "date"}}),
            "customers.columns.segment: type date does not fit the contract's string",
        ),
        (
            _customers(columns={**CUSTOMERS, "segment": {"column": "SEG", "expr": "upper(SEG)"}}),
            "customers.columns.segment: give exactly one of column (a source column) and expr",
        ),
        (
            _customers(columns={**CUSTOMERS, "segment": {"expr": "reflect('java.lang.System', 'exit', 1)"}}),
            "customers.columns.segment: expression refused: reflect() calls Java methods",
        ),
        (
            _customers(
                columns={
                    **CUSTOMERS,
                    "churn_risk": {"column": "C", "true_values": ["Y"], "false_values": ["y"]},
                }
            ),
            "customers.columns.churn_risk: ['y'] is both a true and a false value",
        ),
        (
            _customers(extra_columns={"birth date": "BD"}),
            "customers.extra_columns: 'birth date' is not a column name",
        ),
        (
            _customers(extra_columns={"segment": "SEG"}),
            "customers.extra_columns.segment: a contract column: map it under customers.columns",
        ),
        (
            {"contact_history": {"source": CSV, "extra_columns": {"x": "X"}}},
            "contact_history.extra_columns: only customers keeps columns of its own; remove it",
        ),
        (
            _customers(source={"format": "xls", "path": "a.xls"}),
            "customers.source: format must be one of csv, parquet, jdbc, table",
        ),
        (
            _customers(source={**CSV, "delimiter": ";;"}),
            "customers.source.delimiter: ';;' must be exactly one character",
        ),
        (_customers(source={**CSV, "sep": ";"}), "customers.source.sep: unknown key"),
        (
            _customers(
                source={
                    "format": "jdbc",
                    "url": "jdbc:postgresql://db/crm?user=a&password=s3cret",
                    "driver": "org.postgresql.Driver",
                    "dbtable": "t",
                    "key": ["ID"],
                }
            ),
            "customers.source.url: the URL carries a password: remove it and name the environment variable",
        ),
        (
            _customers(
                source={
                    "format": "jdbc",
                    "url": "jdbc:sqlite:/crm.db",
                    "driver": "org.sqlite.JDBC",
                    "dbtable": "t",
                    "query": "select 1",
                    "key": ["ID"],
                }
            ),
            "customers.source: give exactly one of dbtable (a table name) and query (a SELECT)",
        ),
        (
            _customers(
                source={
                    "format": "jdbc",
                    "url": "jdbc:sqlite:/crm.db",
                    "driver": "org.sqlite.JDBC",
                    "dbtable": "t",
                    "password_env": "s3cr3t!",
                    "key": ["ID"],
                }
            ),
            "customers.source.password_env: 's3cr3t!' is not an environment variable name",
        ),
        (
            _customers(
                source={
                    "format": "jdbc",
                    "url": "jdbc:sqlite:/crm.db",
                    "driver": "org.sqlite.JDBC",
                    "query": "select * from t",
                    "partitioning": {"column": "ID", "lower": 0, "upper": 1000, "partitions": 4},
                    "key": ["ID"],
                }
            ),
            "customers.source: partitioning applies to a dbtable, not to a query",
        ),
        (
            _customers(source={"format": "table", "name": "crm.customers"}),
            "customers.source.key: required key is missing",
        ),
    ],
)
def test_a_mistake_is_one_line_naming_the_file_table_and_column(data: dict[str, Any], expected: str) -> None:
    message = _error(data)
    assert (
        message.startswith("invalid config crm.yaml: ") and expected.removeprefix("crm.yaml: ") in message
    ), message


def test_a_jdbc_source_names_the_environment_variables_of_its_credentials() -> None:
    source = {
        "format": "jdbc",
        "url": "jdbc:sqlite:/data/crm.db",
        "driver": "org.sqlite.JDBC",
        "query": "SELECT * FROM customers",
        "user_env": "CRM_DB_USER",
        "password_env": "CRM_DB_PASSWORD",
        "key": ["CUST_ID"],
    }
    table = mapping_from_dict(_customers(source=source)).tables["customers"]
    assert isinstance(table.source, JdbcSource)
    assert (table.source.user_env, table.source.password_env) == ("CRM_DB_USER", "CRM_DB_PASSWORD")
    assert table.key == ["CUST_ID"]


def test_a_key_given_twice_in_the_file_names_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text(
        "customers:\n  source: {format: csv, path: a.csv}\ncustomers:\n  source: {format: csv, path: b.csv}\n"
    )
    with pytest.raises(
        ConfigError, match="line 3: key 'customers' is given twice \\(lines 1 and 3\\): keep one"
    ):
        load_import_mapping(path)


def test_the_example_parquet_is_what_its_script_writes() -> None:
    sys.path.insert(0, str(EXAMPLE.parent / "crm_export"))
    try:
        import make_propensities
    finally:
        sys.path.pop(0)
    stored = pq.read_table(EXAMPLE.parent / "crm_export" / "propensities.parquet")
    assert stored.equals(make_propensities.table())


def test_the_job_stops_on_a_bad_mapping_with_one_line_and_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "crm.yaml"
    path.write_text(
        "propensities:\n  source: {format: parquet, path: p.parquet}\n  columns: {score: SCORE}\n"
    )
    done = subprocess.run(
        [sys.executable, "jobs/import_inputs.py", "--mapping", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"error: invalid config {path}: propensities.columns.score: not a column of the propensities "
        "contract (customer_id, campaign, channel, propensity)"
    ]


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("maybe", "maybe"),  # a flag's spelling: shown
        ("1.2", "1.2"),
        ("31/02/1980", "**/**/**80"),  # six digits or more could be a phone number
        ("+1 202 555 0143", "+1 *** *** **43"),
        ("ada.verdi@example.org", "a***@example.org"),
        ("  two\tspaces  ", "two spaces"),
        ("x" * 60, "x" * 39 + "…"),
        (None, None),
    ],
)
def test_a_value_quoted_in_the_quarantine_is_masked_when_it_could_be_a_contact(
    raw: str | None, quoted: str | None
) -> None:
    assert mask_value(raw) == quoted
