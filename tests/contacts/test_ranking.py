"""Ranks per use and best contacts follow the configured channels and usage settings."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from contact_spark.config.contacts import ContactSettings
from contact_spark.contacts.ranking import best_contacts, rank_contacts

SETTINGS = ContactSettings()
SCHEMA = (
    "customer_id string, contact_id string, contact_type string, value string, phone_type string, "
    "valid boolean, email_domain_class string, email_role boolean, owner boolean, score int"
)
ROWS = [
    ("C", "m1", "phone", "+393470000001", "mobile", True, None, None, True, 500),
    ("C", "m2", "phone", "+393470000002", "mobile", True, None, None, False, 450),
    ("C", "l1", "phone", "+390200000001", "fixed_line", True, None, None, True, 700),
    ("C", "t1", "phone", "+39800000001", "toll_free", True, None, None, True, 900),
    ("C", "x1", "phone", "+390000000000", "unknown", False, None, None, True, 30),
    ("C", "e1", "email", "info@acme.it", None, True, "corporate", True, True, 600),
    ("C", "e2", "email", "c@mailinator.com", None, True, "disposable", False, True, 100),
]


def _ranks(spark: SparkSession, settings: ContactSettings) -> DataFrame:
    df = spark.createDataFrame(ROWS, SCHEMA).transform(rank_contacts, settings)
    return df.select("contact_id", "rank", "rank_email", "rank_mobile", "rank_phone")


def test_ranks_per_use_with_default_usage(spark: SparkSession) -> None:
    """SMS: the owned mobile only; calls: landline (700) before mobile (500), never the
    toll-free, the non-owned or the invalid number; e-mail: the role address is allowed,
    the disposable one is not. ``rank`` orders every contact of the type by score."""
    expected = spark.createDataFrame(
        [
            ("t1", 1, None, None, None),
            ("l1", 2, None, None, 1),
            ("m1", 3, None, 1, 2),
            ("m2", 4, None, None, None),
            ("x1", 5, None, None, None),
            ("e1", 1, 1, None, None),
            ("e2", 2, None, None, None),
        ],
        "contact_id string, rank int, rank_email int, rank_mobile int, rank_phone int",
    )
    assert_df_equality(_ranks(spark, SETTINGS), expected, ignore_row_order=True, ignore_nullable=True)


def test_non_owners_come_after_owners_when_allowed_and_role_emails_can_be_refused(
    spark: SparkSession,
) -> None:
    settings = SETTINGS.model_copy(
        update={
            "shared": SETTINGS.shared.model_copy(update={"use_non_owner": True}),
            "usage": SETTINGS.usage.model_copy(update={"role_emails": False}),
        }
    )
    got = {
        r.contact_id: (r.rank_email, r.rank_mobile, r.rank_phone) for r in _ranks(spark, settings).collect()
    }
    assert got["m2"] == (None, 2, 3)
    assert got["e1"] == (None, None, None)


def test_best_contacts_use_each_channel_contact_kind_not_its_name(spark: SparkSession) -> None:
    """Channels named NEWSLETTER and CALL_CENTER_OUT: kinds come from the config."""
    ranked = spark.createDataFrame(ROWS, SCHEMA).transform(rank_contacts, SETTINGS)
    got = best_contacts(ranked, {"NEWSLETTER": "email", "CALL_CENTER_OUT": "phone", "TEXT": "mobile"})
    expected = spark.createDataFrame(
        [
            ("C", "NEWSLETTER", "e1", "info@acme.it", "email", 600),
            ("C", "CALL_CENTER_OUT", "l1", "+390200000001", "phone", 700),
            ("C", "TEXT", "m1", "+393470000001", "mobile", 500),
        ],
        "customer_id string, channel string, contact_id string, value string, contact_kind string, score int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_each_use_takes_the_number_types_and_domain_classes_configured(spark: SparkSession) -> None:
    """Calls on landlines and toll-free numbers only, SMS to landlines only, e-mails only to
    disposable domains (odd, but each setting is seen alone): the toll-free number (900) now
    ranks first for calls, the mobiles serve nothing, the disposable address is the e-mail."""
    settings = SETTINGS.model_copy(
        update={
            "usage": SETTINGS.usage.model_copy(
                update={
                    "phone_types": ["fixed_line", "toll_free"],
                    "mobile_types": ["fixed_line"],
                    "email_domain_classes": ["disposable"],
                }
            )
        }
    )
    expected = spark.createDataFrame(
        [
            ("t1", 1, None, None, 1),
            ("l1", 2, None, 1, 2),
            ("m1", 3, None, None, None),
            ("m2", 4, None, None, None),
            ("x1", 5, None, None, None),
            ("e1", 1, None, None, None),
            ("e2", 2, 1, None, None),
        ],
        "contact_id string, rank int, rank_email int, rank_mobile int, rank_phone int",
    )
    assert_df_equality(_ranks(spark, settings), expected, ignore_row_order=True, ignore_nullable=True)
