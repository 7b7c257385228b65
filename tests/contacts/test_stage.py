"""The contacts stage end to end on a tiny base written to Delta: the seed's examples,
bad input, merging, best contacts per channel, households, reruns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config import AppConfig, load_config
from contact_spark.config.models import StorageSettings
from contact_spark.contacts.clean import history_signals, normalize_contacts, with_contact_id
from contact_spark.contacts.stage import TABLES, run_contacts_stage
from contact_spark.io.tables import TableStore

RUN = "contacts-test"
D = dt.date

CUSTOMERS = [
    ("IVAN", "H1"),
    ("TRAVIN", "H2"),
    ("KUROCHKINA", "H3"),
    ("AGENT1", "H4"),
    ("AGENT2", "H5"),
    ("AGENT3", "H6"),
    ("MAMMA", "H7"),
    ("PAPA", "H7"),
    ("NOBODY", None),
    ("BAD", "H8"),
]

# contact_id, customer_id, contact_type, value, source, created_at, last_confirmed_at
CONTACTS = [
    # Ivan's phones, the seed's table: personal, wife's, does not answer, agent's, does not exist.
    ("P1a", "IVAN", "phone", "+7-916-778-44-33", "CRM", D(2018, 5, 1), D(2026, 11, 1)),
    ("P1b", "IVAN", "phone", "+79167784433", "CONTRACT", D(2019, 1, 1), None),
    ("P2", "IVAN", "phone", "+7-921-187-13-12", "WEB", D(2025, 6, 1), None),
    ("P3", "IVAN", "phone", "+7-903-115-03-12", "CRM", D(2016, 1, 1), D(2021, 1, 1)),
    ("P4", "IVAN", "phone", "+7-495-311-88-13", "THIRD_PARTY", D(2024, 1, 1), None),
    # libphonenumber assigns the seed's own example +7-911-19-007-19; +7 200 is unassigned.
    ("P5", "IVAN", "phone", "+7 200 190 07 19", "CRM", D(2020, 1, 1), D(2026, 1, 1)),
    ("E1a", "IVAN", "email", "  Ivan.Petrov@GMAIL.com ", "WEB", D(2020, 1, 1), None),
    ("E1b", "IVAN", "EMAIL", "ivan.petrov@gmail.com", "CRM", D(2021, 1, 1), D(2026, 6, 1)),
    ("E2", "IVAN", "email", "info@studio-petrov.ru", "CRM", D(2020, 1, 1), D(2026, 6, 1)),
    ("E3", "IVAN", "email", "ivan@mailinator.com", "WEB", D(2020, 1, 1), D(2026, 6, 1)),
    # The agent typed his own number on the customers he brought.
    ("A1", "AGENT1", "phone", "+7 495 311 88 13", "CALL_CENTER", D(2022, 1, 1), None),
    ("A2", "AGENT2", "phone", "+7 495 311 88 13", "CALL_CENTER", D(2022, 2, 1), None),
    ("A3", "AGENT3", "phone", "+7 495 311 88 13", "CALL_CENTER", D(2022, 3, 1), None),
    # The seed's shared phone: strong on Travin, weak on Kurochkina.
    ("T1", "TRAVIN", "phone", "+7-903-135-57-79", "CRM", D(2015, 1, 1), D(2026, 12, 1)),
    ("T2", "TRAVIN", "phone", "+7-916-246-68-80", "THIRD_PARTY", D(2026, 12, 1), None),
    ("K1", "KUROCHKINA", "phone", "+7 903 135 57 79", "THIRD_PARTY", D(2026, 12, 20), None),
    # A household: the family landline on both, a mobile on one.
    ("M1", "MAMMA", "phone", "02 1234 5678", "CONTRACT", D(2015, 1, 1), D(2026, 1, 1)),
    ("M2", "MAMMA", "phone", "347 123 4567", "CRM", D(2018, 1, 1), D(2026, 10, 1)),
    ("F1", "PAPA", "phone", "02-12345678", "CONTRACT", D(2015, 1, 1), None),
    # Bad input: every row gets a reason code, none stops the job.
    ("B1", "BAD", "phone", None, "CRM", None, None),
    ("B2", "BAD", "phone", "", "CRM", None, None),
    ("B3", "BAD", "phone", "   ", "CRM", None, None),
    ("B4", "BAD", "phone", "😀", "CRM", None, None),
    ("B5", "BAD", "phone", "123456789012345678901234567890", "CRM", None, None),
    ("B6", "BAD", "email", "@@", "CRM", None, None),
    ("B7", "BAD", "email", "mario@@gmail.com", "CRM", None, None),
    ("B8", "BAD", "fax", "+39 02 1234567", "CRM", None, None),
    ("B9", "BAD", None, "mario@gmail.com", "CRM", None, None),
    ("B10", "BAD", "email", "😀@example.com", "CRM", None, None),
    ("B11", "GHOST", "phone", "3471234567", "CRM", None, None),
    ("B12", None, "phone", "3471234567", "CRM", None, None),
]

# customer_id, contact_date, campaign, channel, contact, outcome
HISTORY = [
    ("IVAN", D(2026, 12, 3), "CROSS_SELLING", "SMS", "+7 916 778 44 33", "responded"),
    ("IVAN", D(2026, 9, 10), "CROSS_SELLING", "TLS", "+7 921 187 13 12", "no_response"),
    ("IVAN", D(2026, 3, 5), "SOLUTION", "TLS", "+7 903 115 03 12", "not_reached"),
    ("IVAN", D(2026, 6, 5), "SOLUTION", "TLS", "+7 903 115 03 12", "not_reached"),
    ("IVAN", D(2026, 10, 5), "SOLUTION", "TLS", "+7 903 115 03 12", "not_reached"),
    ("IVAN", D(2026, 11, 5), "CROSS_SELLING", "DEM", "IVAN.PETROV@gmail.com", "responded"),
    ("TRAVIN", D(2026, 11, 20), "CROSS_SELLING", "TLS", "+79031355779", "converted"),
    ("TRAVIN", D(2026, 12, 15), "CROSS_SELLING", "SMS", "+7 916 246 68 80", "bounced"),
    ("KUROCHKINA", D(2026, 12, 22), "CROSS_SELLING", "TLS", "+7 903 135 57 79", "not_reached"),
    ("KUROCHKINA", D(2026, 12, 23), "CROSS_SELLING", "SMS", "+7 903 135 57 79", "bounced"),
    ("BAD", D(2026, 12, 23), "CROSS_SELLING", "SMS", "n/a", "bounced"),
]


@dataclass(frozen=True)
class _Inputs:
    customers: DataFrame
    contacts: DataFrame
    contact_history: DataFrame


def _inputs(spark: SparkSession) -> _Inputs:
    """The three input frames, one partition each: a dozen rows need no parallel tasks."""
    return _Inputs(
        spark.createDataFrame(CUSTOMERS, "customer_id string, household_id string").coalesce(1),
        spark.createDataFrame(
            CONTACTS,
            "contact_id string, customer_id string, contact_type string, value string, source string, "
            "created_at date, last_confirmed_at date",
        ).coalesce(1),
        spark.createDataFrame(
            HISTORY,
            "customer_id string, contact_date date, campaign string, channel string, contact string, outcome string",
        ).coalesce(1),
    )


@pytest.fixture(scope="module")
def run(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TableStore, AppConfig, dict[str, str]]:
    """The stage, run once for the module (its own store: the shared one is per test)."""
    base = tmp_path_factory.mktemp("contacts") / "lakehouse"
    config = load_config(overrides={"storage.base_path": str(base)})
    store = TableStore(spark, StorageSettings(base_path=str(base), backend="deltalake"))
    tables = run_contacts_stage(spark, store, config, _inputs(spark), RUN)
    return store, config, tables


def test_writes_the_four_tables_with_the_run_id(run: tuple[TableStore, AppConfig, dict[str, str]]) -> None:
    store, _, tables = run
    assert sorted(tables) == sorted(TABLES)
    for name in TABLES:
        assert Path(tables[name]).is_dir()
        assert store.read(name).filter(F.col("run_id") != RUN).count() == 0


def _clean(store: TableStore, *columns: str) -> DataFrame:
    return store.read_run("contacts_clean", RUN).select(*columns)


def test_ivans_phones_rank_as_in_the_seed(spark: SparkSession, run: tuple) -> None:
    """Personal mobile 1, wife's number 2, no answer 3, agent's phone 4, non-existent 5.

    Pinned scores (formula in docs/best_contact.md, as of 2027-01-01):
    P1 two sources, confirmed 2 months ago, responded in December: 895;
    P2 the wife's: WEB only, never confirmed, reached once without response: 618;
    P3 CRM but confirmed 6 years ago and not reached 3 times: 550;
    P4 the agent's landline, on 4 customers: 360, and AGENT1 (same score 427 on the three
    agents, held longest) owns it, so Ivan's copy is demoted to 180 and not used;
    P5 +7 200… is unassigned: 458 × 0.1 = 46, kept (rank 5) but never used.
    """
    store, _, _ = run
    got = (
        _clean(
            store, "contact_id", "value", "base_score", "score", "owner", "rank", "rank_mobile", "rank_phone"
        )
        .filter(F.col("customer_id") == "IVAN")
        .filter(F.col("contact_type") == "phone")
    )
    expected = spark.createDataFrame(
        [
            ("P1a", "+79167784433", 895, 895, True, 1, 1, 1),
            ("P2", "+79211871312", 618, 618, True, 2, 2, 2),
            ("P3", "+79031150312", 550, 550, True, 3, 3, 3),
            ("P4", "+74953118813", 360, 180, False, 4, None, None),
            ("P5", "+72001900719", 46, 46, True, 5, None, None),
        ],
        "contact_id string, value string, base_score int, score int, owner boolean, rank int, "
        "rank_mobile int, rank_phone int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_shared_phone_belongs_to_the_higher_score(spark: SparkSession, run: tuple) -> None:
    """+7 903 135 57 79: 779 on Travin (CRM since 2015, converted in November) against
    180 on Kurochkina (third party, added in December, not reached then bounced).
    Travin owns it; Kurochkina's copy is demoted to 90 and she has no usable phone."""
    store, _, _ = run
    got = _clean(store, "customer_id", "base_score", "score", "owner", "holders", "reason_codes").filter(
        F.col("value") == "+79031355779"
    )
    expected = spark.createDataFrame(
        [
            ("TRAVIN", 779, 779, True, 2, ["SHARED_CONTACT"]),
            ("KUROCHKINA", 180, 90, False, 2, ["SHARED_CONTACT", "NOT_OWNER", "LAST_CONTACT_BOUNCED"]),
        ],
        "customer_id string, base_score int, score int, owner boolean, holders int, reason_codes array<string>",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_bad_input_is_rejected_with_a_reason_code_and_a_masked_value(spark: SparkSession, run: tuple) -> None:
    store, _, _ = run
    got = store.read_run("contacts_rejected", RUN).drop("run_id")
    expected = spark.createDataFrame(
        [
            ("BAD", "B1", "phone", "CRM", None, "NULL_VALUE"),
            ("BAD", "B2", "phone", "CRM", "", "EMPTY_VALUE"),
            ("BAD", "B3", "phone", "CRM", "", "EMPTY_VALUE"),
            ("BAD", "B4", "phone", "CRM", "*", "PHONE_NOT_A_NUMBER"),
            ("BAD", "B5", "phone", "CRM", "****************************90", "PHONE_TOO_LONG"),
            ("BAD", "B6", "email", "CRM", "*@", "EMAIL_MULTIPLE_AT"),
            ("BAD", "B7", "email", "CRM", "m***@gmail.com", "EMAIL_MULTIPLE_AT"),
            ("BAD", "B8", "fax", "CRM", "+39 ** *****67", "UNKNOWN_CONTACT_TYPE"),
            ("BAD", "B9", None, "CRM", "m***@gmail.com", "UNKNOWN_CONTACT_TYPE"),
            ("BAD", "B10", "email", "CRM", "*@example.com", "EMAIL_NON_ASCII_LOCAL_PART"),
            ("GHOST", "B11", "phone", "CRM", "********67", "UNKNOWN_CUSTOMER"),
            (None, "B12", "phone", "CRM", "********67", "MISSING_CUSTOMER_ID"),
        ],
        "customer_id string, contact_id string, contact_type string, source string, masked_value string, "
        "reason_code string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_every_raw_row_is_clean_or_rejected_exactly_once(run: tuple) -> None:
    store, _, _ = run
    clean_ids = [
        r[0] for r in store.read_run("contacts_clean", RUN).select(F.explode("contact_ids")).collect()
    ]
    rejected_ids = [r[0] for r in store.read_run("contacts_rejected", RUN).select("contact_id").collect()]
    assert sorted(clean_ids + rejected_ids) == sorted(c[0] for c in CONTACTS)


def test_duplicates_merge_into_one_row_with_their_sources(spark: SparkSession, run: tuple) -> None:
    """'  Ivan.Petrov@GMAIL.com ' (WEB) and 'ivan.petrov@gmail.com' (typed EMAIL, CRM) are one address."""
    store, _, _ = run
    got = _clean(store, "contact_id", "contact_ids", "contact_type", "value", "sources", "n_records").filter(
        F.col("n_records") > 1
    )
    expected = spark.createDataFrame(
        [
            ("E1a", ["E1a", "E1b"], "email", "ivan.petrov@gmail.com", ["CRM", "WEB"], 2),
            ("P1a", ["P1a", "P1b"], "phone", "+79167784433", ["CONTRACT", "CRM"], 2),
        ],
        "contact_id string, contact_ids array<string>, contact_type string, value string, "
        "sources array<string>, n_records int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_best_contact_per_channel(spark: SparkSession, run: tuple) -> None:
    """DEM: Ivan's personal gmail (the role address ranks 2, the disposable is not usable).
    SMS needs a mobile: Papa has only the family landline, so no SMS row. Kurochkina and
    two agents own no contact: no row at all."""
    store, _, _ = run
    got = store.read_run("best_contacts", RUN).drop("run_id")
    expected = spark.createDataFrame(
        [
            ("IVAN", "DEM", "E1a", "ivan.petrov@gmail.com", "email", 876),
            ("IVAN", "SMS", "P1a", "+79167784433", "mobile", 895),
            ("IVAN", "TLS", "P1a", "+79167784433", "phone", 895),
            ("TRAVIN", "SMS", "T1", "+79031355779", "mobile", 779),
            ("TRAVIN", "TLS", "T1", "+79031355779", "phone", 779),
            ("MAMMA", "SMS", "M2", "+393471234567", "mobile", 692),
            ("MAMMA", "TLS", "M2", "+393471234567", "phone", 692),
            ("PAPA", "TLS", "F1", "+390212345678", "phone", 528),
            ("AGENT1", "TLS", "A1", "+74953118813", "phone", 427),
        ],
        "customer_id string, channel string, contact_id string, value string, contact_kind string, score int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_contactability_ranks_the_base_and_picks_the_household_best(spark: SparkSession, run: tuple) -> None:
    """Pinned: Ivan 928 (three kinds, five usable contacts) first; Mamma (mobile + family
    landline) beats Papa (landline only) in household H7; customers with no owned,
    usable contact score 0 and share the last rank."""
    store, _, _ = run
    got = store.read_run("contactability", RUN).drop("run_id")
    expected = spark.createDataFrame(
        [
            ("IVAN", "H1", 928, 1, True, 5),
            ("TRAVIN", "H2", 535, 2, True, 2),
            ("MAMMA", "H7", 491, 3, True, 2),
            ("PAPA", "H7", 176, 4, False, 1),
            ("AGENT1", "H4", 142, 5, True, 1),
            ("KUROCHKINA", "H3", 0, 6, True, 0),
            ("AGENT2", "H5", 0, 6, True, 0),
            ("AGENT3", "H6", 0, 6, True, 0),
            ("BAD", "H8", 0, 6, True, 0),
            ("NOBODY", None, 0, 6, True, 0),
        ],
        "customer_id string, household_id string, score int, rank long, household_best boolean, usable_contacts int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_rerun_replaces_the_run_with_identical_rows(spark: SparkSession, run: tuple) -> None:
    """Same input, same run id: every table is replaced by the same rows, never appended."""
    store, config, _ = run
    before = {t: store.read_run(t, RUN).localCheckpoint() for t in TABLES}
    run_contacts_stage(spark, store, config, _inputs(spark), RUN)
    for table, rows in before.items():
        assert_df_equality(store.read_run(table, RUN), rows, ignore_row_order=True)


def test_history_takes_the_contacts_normalisation_where_written_alike(spark: SparkSession) -> None:
    """Kurochkina's history number is typed exactly like her contact K1, Ivan's are typed
    differently: the looked-up and the freshly parsed history give the same signals."""
    inputs = _inputs(spark)
    config = load_config()
    kinds = {ch: c.contact_kind for ch, c in config.channels.items()}
    checked = inputs.contacts.transform(with_contact_id).transform(normalize_contacts, config.contacts)
    written_alike = {r[4] for r in HISTORY} & {r[3] for r in CONTACTS}
    assert written_alike == {"+7 903 135 57 79"}
    parsed = history_signals(inputs.contact_history, config.contacts, kinds)
    looked_up = history_signals(inputs.contact_history, config.contacts, kinds, normalized=checked)
    assert_df_equality(looked_up, parsed, ignore_row_order=True)
    assert parsed.count() == 7  # Ivan 4, Travin 2, Kurochkina 1 ("n/a" is not a number)
