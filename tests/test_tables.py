"""The Delta table layer on both backends, native Delta (the Delta Spark jars) and delta-rs:
real Delta tables on disk, and tables one engine writes that the other reads and appends to."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from contact_spark.config.models import StorageSettings
from contact_spark.errors import MissingTableError, RunConflictError
from contact_spark.io.tables import LocalRows, TableStore

PLAN_SCHEMA = "run_id string, customer_id string, month date, channel string, expected_value double"


@pytest.fixture(params=["spark", "deltalake"])
def store(request: pytest.FixtureRequest, spark: SparkSession, lakehouse: Path) -> TableStore:
    """Each test of this module runs on native Delta ("spark") and on delta-rs ("deltalake")."""
    return TableStore(spark, StorageSettings(base_path=str(lakehouse), backend=request.param))


def plan_rows(spark: SparkSession, run_id: str, n: int) -> DataFrame:
    rows = [(run_id, f"C{i}", dt.date(2027, 1 + i % 12, 1), "DEM", float(i)) for i in range(n)]
    return spark.createDataFrame(rows, PLAN_SCHEMA)


def test_rerun_of_a_run_replaces_its_rows_and_never_duplicates(
    spark: SparkSession, store: TableStore
) -> None:
    store.replace_run(plan_rows(spark, "r1", 5), "plan", "r1")
    store.replace_run(plan_rows(spark, "r2", 2), "plan", "r2")
    store.replace_run(plan_rows(spark, "r1", 3), "plan", "r1")
    expected = plan_rows(spark, "r1", 3).unionByName(plan_rows(spark, "r2", 2))
    assert_df_equality(store.read("plan"), expected, ignore_row_order=True)
    assert store.version("plan") == 2


def test_written_table_is_real_delta_readable_by_delta_rs(
    spark: SparkSession, store: TableStore, lakehouse: Path
) -> None:
    store.replace_run(plan_rows(spark, "r1", 3), "plan", "r1")
    table = DeltaTable(str(lakehouse / "plan"))
    assert table.metadata().partition_columns == ["run_id"]
    got = table.to_pandas().sort_values("customer_id").reset_index(drop=True)
    assert list(got["customer_id"]) == ["C0", "C1", "C2"]
    assert list(got["run_id"]) == ["r1", "r1", "r1"]
    assert list(got["expected_value"]) == [0.0, 1.0, 2.0]
    assert (lakehouse / "plan" / "_delta_log" / "00000000000000000000.json").is_file()
    assert not (lakehouse / "plan" / "_staging").exists()


def test_read_an_older_version(spark: SparkSession, store: TableStore) -> None:
    store.overwrite(spark.createDataFrame([(1, "a")], "k int, v string"), "kv")
    store.overwrite(spark.createDataFrame([(2, "b")], "k int, v string"), "kv")
    assert_df_equality(store.read("kv", version=0), spark.createDataFrame([(1, "a")], "k int, v string"))
    assert_df_equality(store.read("kv"), spark.createDataFrame([(2, "b")], "k int, v string"))
    assert [h["version"] for h in store.history("kv")] == [1, 0]


def test_a_few_rows_of_a_version_are_read_to_the_driver_alike_on_both_engines(
    spark: SparkSession, store: TableStore
) -> None:
    """``read_rows`` (the run lock's reads; on delta-rs without Spark): the rows of one version
    whose columns equal the given values, as Rows with the table's columns."""
    store.replace_run(plan_rows(spark, "r1", 3), "plan", "r1")
    store.replace_run(plan_rows(spark, "r2", 2), "plan", "r2")
    store.replace_run(plan_rows(spark, "r1", 1), "plan", "r1")
    at_1 = store.read_rows("plan", 1, {"run_id": "r1"})
    assert sorted((r["customer_id"], r["month"], r["expected_value"]) for r in at_1) == [
        ("C0", dt.date(2027, 1, 1), 0.0),
        ("C1", dt.date(2027, 2, 1), 1.0),
        ("C2", dt.date(2027, 3, 1), 2.0),
    ]
    assert [r["customer_id"] for r in store.read_rows("plan", 2, {"run_id": "r1"})] == ["C0"]
    assert store.read_rows("plan", 2, {"run_id": "r3"}) == []
    assert sorted(at_1[0].asDict()) == ["channel", "customer_id", "expected_value", "month", "run_id"]


def test_merge_upserts_by_key(spark: SparkSession, store: TableStore) -> None:
    schema = "k int, v string"
    store.overwrite(spark.createDataFrame([(1, "a"), (2, "b")], schema), "kv")
    store.merge(spark.createDataFrame([(2, "B"), (3, "c")], schema), "kv", keys=["k"])
    expected = spark.createDataFrame([(1, "a"), (2, "B"), (3, "c")], schema)
    assert_df_equality(store.read("kv"), expected, ignore_row_order=True)


def test_append_with_the_same_app_transaction_is_written_once(spark: SparkSession, store: TableStore) -> None:
    df = spark.createDataFrame([(1, "a")], "k int, v string")
    assert store.append(df, "events", app_id="loader", txn_version=7) is True
    assert store.append(df, "events", app_id="loader", txn_version=7) is False
    assert store.append(df, "events", app_id="loader", txn_version=8) is True
    assert store.read("events").count() == 2


def test_rows_of_another_run_are_refused(spark: SparkSession, store: TableStore) -> None:
    with pytest.raises(RunConflictError, match="carry another run_id"):
        store.replace_run(plan_rows(spark, "r2", 2), "plan", "r1")
    assert not store.exists("plan")


@pytest.mark.parametrize("run_id", ["", "a b", "../escape", "r/1", "x" * 200])
def test_run_ids_must_be_path_safe(spark: SparkSession, store: TableStore, run_id: str) -> None:
    with pytest.raises(RunConflictError, match="is not valid"):
        store.replace_run(plan_rows(spark, "r1", 1), "plan", run_id)


def test_missing_table_is_named(store: TableStore) -> None:
    with pytest.raises(MissingTableError, match=r"table 'customers' not found at .*customers"):
        store.read("customers")


def test_empty_table_keeps_its_schema(spark: SparkSession, store: TableStore) -> None:
    empty = spark.createDataFrame([], "customer_id string, score int")
    store.overwrite(empty, "scores")
    got = store.read("scores")
    assert got.count() == 0
    assert got.schema.simpleString() == "struct<customer_id:string,score:int>"


def test_the_chosen_backend_is_used(store: TableStore) -> None:
    assert store.backend.name == store.storage.backend


def test_auto_picks_native_delta_when_the_extension_is_loaded(spark: SparkSession, lakehouse: Path) -> None:
    # The shared test session is started with the Delta jars and extension (tests/conftest.py).
    assert (
        TableStore(spark, StorageSettings(base_path=str(lakehouse), backend="auto")).backend.name == "spark"
    )


EVENT_SCHEMA = "run_id string, step int, month date, at timestamp, value double, flag boolean, note string"


def event_rows(run_id: str) -> list[tuple]:
    return [
        (run_id, 0, dt.date(2027, 1, 1), dt.datetime(2027, 1, 2, 3, 4, 5, 678901), 1.5, True, "a"),
        (run_id, 1, None, None, None, None, None),
    ]


def test_local_rows_and_spark_rows_land_in_one_table_alike(spark: SparkSession, store: TableStore) -> None:
    """Driver-side rows (iteration records, timings) are written with pyarrow, not by a Spark
    job: a run written that way reads back exactly like a run Spark wrote, dates,
    microsecond timestamps and nulls included, in the same run_id-partitioned table."""
    store.replace_run(spark.createDataFrame(event_rows("spark"), EVENT_SCHEMA), "events", "spark")
    store.replace_run(LocalRows.of(event_rows("local"), EVENT_SCHEMA), "events", "local")
    store.append(LocalRows.of(event_rows("local")[:1], EVENT_SCHEMA), "events")
    expected = spark.createDataFrame(
        event_rows("spark") + event_rows("local") + event_rows("local")[:1], EVENT_SCHEMA
    )
    assert_df_equality(store.read("events"), expected, ignore_row_order=True)
    # A rerun of the local run replaces its rows only.
    store.replace_run(LocalRows.of(event_rows("local")[1:], EVENT_SCHEMA), "events", "local")
    assert sorted((r["run_id"], r["step"]) for r in store.read("events").collect()) == [
        ("local", 1),
        ("spark", 0),
        ("spark", 1),
    ]
    assert DeltaTable(store.location("events")).metadata().partition_columns == ["run_id"]


def test_local_rows_create_a_table_and_refuse_another_run(spark: SparkSession, store: TableStore) -> None:
    store.overwrite(LocalRows.of([], EVENT_SCHEMA), "empty_events")
    assert store.read("empty_events").count() == 0
    assert store.read("empty_events").schema == spark.createDataFrame([], EVENT_SCHEMA).schema
    with pytest.raises(RunConflictError, match="'events' for run 'r1' carry another run_id"):
        store.replace_run(LocalRows.of(event_rows("r2"), EVENT_SCHEMA), "events", "r1")


def test_replace_run_refuses_a_table_not_partitioned_by_run_id(
    spark: SparkSession, store: TableStore
) -> None:
    store.overwrite(plan_rows(spark, "r1", 2), "plan")
    with pytest.raises(RunConflictError, match="is not partitioned by run_id"):
        store.replace_run(plan_rows(spark, "r1", 1), "plan", "r1")
    assert store.read("plan").count() == 2


def stores(spark: SparkSession, lakehouse: Path) -> tuple[TableStore, TableStore]:
    """A native Delta store and a delta-rs store over the same lakehouse."""
    native = TableStore(spark, StorageSettings(base_path=str(lakehouse), backend="spark"))
    delta_rs = TableStore(spark, StorageSettings(base_path=str(lakehouse), backend="deltalake"))
    return native, delta_rs


def test_a_table_written_by_native_delta_is_read_and_extended_by_delta_rs(
    spark: SparkSession, lakehouse: Path
) -> None:
    native, delta_rs = stores(spark, lakehouse)
    native.replace_run(plan_rows(spark, "r1", 3), "plan", "r1")
    native.replace_run(plan_rows(spark, "r2", 2), "plan", "r2")
    native.replace_run(plan_rows(spark, "r1", 1), "plan", "r1")
    # The deltalake package itself, as the real-time snapshot reads it.
    table = DeltaTable(str(lakehouse / "plan"))
    assert table.version() == 2
    assert table.metadata().partition_columns == ["run_id"]
    got = table.to_pyarrow_table().sort_by([("run_id", "ascending"), ("customer_id", "ascending")])
    assert got.column("run_id").to_pylist() == ["r1", "r2", "r2"]
    assert got.column("customer_id").to_pylist() == ["C0", "C0", "C1"]
    assert got.column("month").to_pylist() == [dt.date(2027, 1, 1), dt.date(2027, 1, 1), dt.date(2027, 2, 1)]
    assert [h["version"] for h in table.history()] == [2, 1, 0]
    assert [h["operation"] for h in table.history()] == ["WRITE", "WRITE", "WRITE"]
    # delta-rs rewrites a run of the native table and appends to it; native Delta reads both.
    delta_rs.replace_run(plan_rows(spark, "r2", 1), "plan", "r2")
    delta_rs.append(plan_rows(spark, "r3", 1), "plan")
    expected = (
        plan_rows(spark, "r1", 1)
        .unionByName(plan_rows(spark, "r2", 1))
        .unionByName(plan_rows(spark, "r3", 1))
    )
    assert_df_equality(native.read("plan"), expected, ignore_row_order=True)
    assert_df_equality(
        native.read("plan", version=1),
        plan_rows(spark, "r1", 3).unionByName(plan_rows(spark, "r2", 2)),
        ignore_row_order=True,
    )
    assert [h["version"] for h in native.history("plan")] == [4, 3, 2, 1, 0]
    assert [h["version"] for h in delta_rs.history("plan")] == [4, 3, 2, 1, 0]


def test_a_table_written_by_delta_rs_is_read_and_appended_to_by_native_delta(
    spark: SparkSession, lakehouse: Path
) -> None:
    native, delta_rs = stores(spark, lakehouse)
    delta_rs.replace_run(LocalRows.of(event_rows("local"), EVENT_SCHEMA), "events", "local")
    delta_rs.replace_run(spark.createDataFrame(event_rows("spark"), EVENT_SCHEMA), "events", "spark")
    expected = spark.createDataFrame(event_rows("local") + event_rows("spark"), EVENT_SCHEMA)
    assert_df_equality(native.read("events"), expected, ignore_row_order=True)
    # Native Delta appends, merges and replaces a run in the delta-rs table.
    assert native.append(LocalRows.of(event_rows("native"), EVENT_SCHEMA), "events") is True
    native.replace_run(spark.createDataFrame(event_rows("spark")[:1], EVENT_SCHEMA), "events", "spark")
    expected = spark.createDataFrame(
        event_rows("local") + event_rows("spark")[:1] + event_rows("native"), EVENT_SCHEMA
    )
    assert_df_equality(native.read("events"), expected, ignore_row_order=True)
    assert_df_equality(delta_rs.read("events"), expected, ignore_row_order=True)
    table = DeltaTable(str(lakehouse / "events"))
    assert table.version() == 3
    assert [h["version"] for h in table.history()] == [3, 2, 1, 0]
    assert [h["version"] for h in native.history("events")] == [3, 2, 1, 0]
    assert [h["operation"] for h in native.history("events")][:2] == ["WRITE", "WRITE"]


@pytest.mark.parametrize("first", ["spark", "deltalake"])
def test_a_committed_app_transaction_is_skipped_by_the_other_engine(
    spark: SparkSession, lakehouse: Path, first: str
) -> None:
    """Resume after a crash may run on another engine than the run that crashed."""
    native, delta_rs = stores(spark, lakehouse)
    writer, resumer = (native, delta_rs) if first == "spark" else (delta_rs, native)
    df = spark.createDataFrame([(1, "a")], "k int, v string")
    assert writer.append(df, "events", app_id="loader", txn_version=7) is True
    assert resumer.append(df, "events", app_id="loader", txn_version=7) is False
    assert resumer.append(df, "events", app_id="loader", txn_version=8) is True
    assert writer.append(df, "events", app_id="loader", txn_version=8) is False
    assert writer.read("events").count() == 2
    assert resumer.version("events") == 1


def test_native_delta_tables_can_be_catalog_names(spark: SparkSession, lakehouse: Path) -> None:
    """As on Unity Catalog: `storage.database` makes every table a metastore name
    (saveAsTable), here in the session's local catalog and temporary warehouse."""
    spark.sql("CREATE DATABASE crm_test")
    try:
        store = TableStore(
            spark, StorageSettings(base_path=str(lakehouse), database="crm_test", backend="spark")
        )
        assert store.location("plan") == "crm_test.plan"
        store.replace_run(plan_rows(spark, "r1", 3), "plan", "r1")
        store.replace_run(plan_rows(spark, "r2", 2), "plan", "r2")
        store.replace_run(plan_rows(spark, "r1", 1), "plan", "r1")
        expected = plan_rows(spark, "r1", 1).unionByName(plan_rows(spark, "r2", 2))
        assert_df_equality(store.read("plan"), expected, ignore_row_order=True)
        older = plan_rows(spark, "r1", 3).unionByName(plan_rows(spark, "r2", 2))
        assert_df_equality(store.read("plan", version=1), older, ignore_row_order=True)
        assert [h["version"] for h in store.history("plan")] == [2, 1, 0]
        assert spark.catalog.tableExists("crm_test.plan")
        assert not lakehouse.exists()
    finally:
        spark.sql("DROP DATABASE crm_test CASCADE")
