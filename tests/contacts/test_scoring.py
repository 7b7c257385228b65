"""The score formula, its monotonicity, ownership of shared contacts and the base ranking."""

from __future__ import annotations

import datetime as dt
import random

from chispa import assert_df_equality
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.contacts import ContactSettings
from contact_spark.contacts.ranking import (
    assign_owner,
    best_in_group,
    customer_contactability,
    household_best,
    rank_base,
)
from contact_spark.contacts.scoring import score_contacts

AS_OF = dt.date(2027, 1, 1)
SETTINGS = ContactSettings()
SIGNAL_SCHEMA = (
    "id int, contact_type string, phone_type string, valid boolean, email_role boolean, "
    "email_domain_class string, sources array<string>, holders int, n_converted int, n_responded int, "
    "n_no_response int, n_not_reached int, n_bounced int, created_at date, last_confirmed_at date, "
    "last_reached_at date, last_bounced boolean"
)


def _scores(spark: SparkSession, rows: list[tuple]) -> dict[int, int]:
    df = spark.createDataFrame(rows, SIGNAL_SCHEMA).transform(score_contacts, SETTINGS, AS_OF)
    return {r.id: r.base_score for r in df.select("id", "base_score").collect()}


def test_score_of_one_phone_computed_by_hand(spark: SparkSession) -> None:
    """A mobile from CRM and WEB, on 2 customers, responded once and no answer twice.

    signals: sources min(1, (1.0 + 0.6) / 1.5) = 1; type (mobile) 1; uniqueness 1/2;
    history (0.5·2 + 1.0 + 2·0.6) / (2 + 3) = 0.64; age 730 days / 730 = 1;
    confirmed 365 days ago = 0.5; last reached 180 days ago = 0.5.
    score = 200·1 + 200·1 + 100·0.5 + 250·0.64 + 50·1 + 100·0.5 + 100·0.5 = 760
    (the phone weights add up to 1000). The same with one more bounce, on the latest
    day: history 3.2 / 6 = 0.5333 → 733.33, × 0.5 (last bounced) = 366.67 → 367.
    The same as an e-mail at a corporate domain: + 100·0.6 over 1100 points = 820/1100 → 745.
    Without any date (created, confirmed, last reached unknown): age, confirmed and last
    contact signals are 0, not "today": 760 − 50·1 − 100·0.5 − 100·0.5 = 610.
    """
    base = (
        "phone", "mobile", True, None, None, ["CRM", "WEB"], 2, 0, 1, 2, 0, 0,
        dt.date(2025, 1, 1), dt.date(2026, 1, 1), dt.date(2026, 7, 5), False,
    )  # fmt: skip
    bounced = list(base)
    bounced[11], bounced[15] = 1, True
    email = list(base)
    email[0:5] = ["email", None, True, False, "corporate"]
    undated = list(base)
    undated[12:15] = [None, None, None]
    scores = _scores(spark, [(1, *base), (2, *bounced), (3, *email), (4, *undated)])
    assert scores == {1: 760, 2: 367, 3: 745, 4: 610}


@settings(max_examples=4, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_a_bounce_never_raises_a_score(spark: SparkSession, seed: int) -> None:
    """200 random contacts per example, each scored with and without one more bounce."""
    rnd = random.Random(seed)
    rows = []
    for i in range(200):
        kind = rnd.choice(["phone", "email"])
        day = lambda: rnd.choice([None, AS_OF - dt.timedelta(days=rnd.randint(0, 4000))])  # noqa: E731
        row = [
            kind,
            rnd.choice(["mobile", "fixed_line", "toll_free", "unknown"]) if kind == "phone" else None,
            rnd.random() < 0.9,
            rnd.random() < 0.2 if kind == "email" else None,
            rnd.choice(["public", "corporate", "disposable", "typo"]) if kind == "email" else None,
            sorted(rnd.sample(["CRM", "WEB", "THIRD_PARTY", "X"], rnd.randint(1, 3))),
            rnd.randint(1, 4),
            *[rnd.randint(0, 3) for _ in range(5)],
            day(),
            day(),
            day(),
            rnd.random() < 0.2,
        ]
        with_bounce = list(row)
        with_bounce[11] += 1
        # The extra bounce is either the latest contact or an older one.
        with_bounce[15] = row[15] or rnd.random() < 0.5
        rows += [(2 * i, *row), (2 * i + 1, *with_bounce)]
    scores = _scores(spark, rows)
    worse = [i for i in range(200) if scores[2 * i + 1] > scores[2 * i]]
    assert worse == []


def _owners(spark: SparkSession, rows: list[tuple], settings: ContactSettings = SETTINGS) -> DataFrame:
    df = spark.createDataFrame(
        rows,
        "contact_type string, value string, customer_id string, household_id string, base_score int, created_at date",
    )
    return df.transform(assign_owner, settings).select("value", "customer_id", "owner", "score")


def test_shared_phone_belongs_to_the_customer_scoring_800_not_40(spark: SparkSession) -> None:
    """The seed's example: +7-903-135-57-79 scores 800 on Travin Ivan and 40 on Kurochkina Anna.

    Ivan owns it; Anna's copy is demoted to 40 × 0.5 = 20. A tie on score goes to the
    customer holding it longest, then to the smaller customer_id.
    """
    phone = "+79031355779"
    got = _owners(
        spark,
        [
            ("phone", phone, "TRAVIN", "H1", 800, dt.date(2020, 1, 1)),
            ("phone", phone, "KUROCHKINA", "H2", 40, dt.date(2010, 1, 1)),
            ("phone", "+39021", "B", "H3", 500, dt.date(2019, 1, 1)),
            ("phone", "+39021", "A", "H4", 500, dt.date(2020, 1, 1)),
            ("phone", "+39022", "D", "H5", 500, None),
            ("phone", "+39022", "C", "H6", 500, None),
            ("phone", "+39023", "ALONE", None, 300, None),
        ],
    )
    expected = _owners(spark, []).sparkSession.createDataFrame(
        [
            (phone, "TRAVIN", True, 800),
            (phone, "KUROCHKINA", False, 20),
            ("+39021", "B", True, 500),
            ("+39021", "A", False, 250),
            ("+39022", "C", True, 500),
            ("+39022", "D", False, 250),
            ("+39023", "ALONE", True, 300),
        ],
        "value string, customer_id string, owner boolean, score int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_household_members_share_ownership_unless_configured_not_to(spark: SparkSession) -> None:
    rows = [
        ("phone", "+39021", "A", "H1", 600, None),
        ("phone", "+39021", "B", "H1", 550, None),
        ("phone", "+39021", "C", "H2", 580, None),
    ]
    shared = {r.customer_id: r.owner for r in _owners(spark, rows).collect()}
    assert shared == {"A": True, "B": True, "C": False}
    strict = SETTINGS.model_copy(
        update={"shared": SETTINGS.shared.model_copy(update={"household_shares": False})}
    )
    alone = {r.customer_id: r.owner for r in _owners(spark, rows, strict).collect()}
    assert alone == {"A": True, "B": False, "C": False}


def test_contactability_by_hand(spark: SparkSession) -> None:
    """Customer X: e-mail rank 1 (800), a mobile first for SMS and calls (600), a landline
    second for calls (500). R_email = 0.8, R_mobile = 0.6, R_phone = 1 − (1 − 0.6)(1 − 0.5·0.5)
    = 0.7; equal kind weights: 1000 × (0.8 + 0.6 + 0.7) / 3 = 700. Y has no usable contact: 0.
    With only DEM configured, X scores 800.
    """
    clean = spark.createDataFrame(
        [
            ("X", 800, 1, None, None),
            ("X", 600, None, 1, 1),
            ("X", 500, None, None, 2),
            ("Y", 300, None, None, None),
        ],
        "customer_id string, score int, rank_email int, rank_mobile int, rank_phone int",
    )
    customers = spark.createDataFrame(
        [("X", "H1"), ("Y", "H1"), ("Z", None)], "customer_id string, household_id string"
    )
    got = customer_contactability(clean, customers, SETTINGS, ["email", "mobile", "phone"])
    expected = spark.createDataFrame(
        [("X", "H1", 700, 3), ("Y", "H1", 0, 0), ("Z", None, 0, 0)],
        "customer_id string, household_id string, score int, usable_contacts int",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    dem_only = customer_contactability(clean, customers, SETTINGS, ["email"]).filter("customer_id = 'X'")
    assert dem_only.first()["score"] == 800


def test_base_ranking_shares_ranks_on_ties_and_household_best(spark: SparkSession) -> None:
    """The seed's contactability list 725, 615, 615 … 33, 10 ranks 1, 2, 2, 4, 5."""
    df = spark.createDataFrame(
        [
            ("IVANOV", "H1", 725),
            ("PETROV", "H2", 615),
            ("SMIRNOVA", "H2", 615),
            ("STEPANOV", None, 33),
            ("ZABRINA", "H3", 10),
        ],
        "customer_id string, household_id string, score int",
    )
    got = df.transform(rank_base).transform(household_best).select("customer_id", "rank", "household_best")
    expected = spark.createDataFrame(
        [
            ("IVANOV", 1, True),
            ("PETROV", 2, True),
            ("SMIRNOVA", 2, False),
            ("STEPANOV", 4, True),
            ("ZABRINA", 5, True),
        ],
        "customer_id string, rank long, household_best boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert df.transform(rank_base).filter(F.col("rank").isNull()).count() == 0


def test_best_in_any_group(spark: SparkSession) -> None:
    """The seed's 2.4: the most contactable client of a segment (here by segment and region)."""
    df = spark.createDataFrame(
        [
            ("A", "VIP", "NORD", 500),
            ("B", "VIP", "NORD", 700),
            ("C", "VIP", "SUD", 100),
            ("D", None, "SUD", 50),
        ],
        "customer_id string, segment string, region string, score int",
    )
    got = {r.customer_id: r.best for r in best_in_group(df, ["segment", "region"], "best").collect()}
    assert got == {"A": False, "B": True, "C": True, "D": True}


def test_every_score_setting_moves_the_score_as_documented(spark: SparkSession) -> None:
    """Every ``contacts.sources`` and ``contacts.score`` setting away from its default, scored
    by hand (docs/best_contact.md). Phone signal weights 100 each, uniqueness 0 (600 points);
    e-mails add the domain's 400 (1000 points); 2027-01-01 is the day of scoring.

    1. A mobile from CRM and WEB: sources (0.5 + 0.25 default weight) / saturation 1 = 0.75;
       type 0.5; history (prior 0.25 × strength 3 + converted 1 + responded 0.75 + no
       response 0.5 + not reached 0.25) / (3 + 4) = 0.4643; created 50 days ago of 100: 0.5;
       confirmed one half-life (10 days) and reached one half-life (20 days) ago: 0.5 each.
       1000 × (75 + 50 + 46.43 + 50 + 50 + 50) / 600 = 535.7 → 536.
    2. The same, one more contact bounced and last, the number invalid: history 3.25 / 8;
       1000 × 315.625 / 600 × invalid 0.5 × last bounced 0.25 = 65.8 → 66.
    3. A landline (0.25) from THIRD_PARTY (not listed: 0.25), never used, no dates:
       1000 × (25 + 25 + 25) / 600 → 125.
    4. A role address (0.45) at a corporate domain (1.0 signal, 0.5 factor), from CRM,
       created 200 days ago (age 1): (50 + 45 + 25 + 100 + 400) / 1000 × 0.5 → 310.
    5. A personal address (0.8) at a public domain (0.5, factor 1): 50 + 80 + 25 + 100 + 200
       → 455.
    6. The same at a disposable domain (signal 0, factor 0.25): 255 × 0.25 = 63.75 → 64.
    """
    settings = ContactSettings.model_validate(
        {
            "sources": {"weights": {"CRM": 0.5}, "default_weight": 0.25, "saturation": 1.0},
            "score": {
                "weights": {
                    "sources": 100,
                    "type": 100,
                    "uniqueness": 0,
                    "history": 100,
                    "age": 100,
                    "confirmed": 100,
                    "last_contact": 100,
                    "domain": 400,
                },
                "phone_types": {"mobile": 0.5, "fixed_line": 0.25},
                "email_personal": 0.8,
                "email_role": 0.45,
                "domain_classes": {"public": 0.5, "corporate": 1.0, "disposable": 0.0, "typo": 0.0},
                "domain_factors": {"public": 1.0, "corporate": 0.5, "disposable": 0.25, "typo": 0.25},
                "outcome_values": {
                    "converted": 1.0,
                    "responded": 0.75,
                    "no_response": 0.5,
                    "not_reached": 0.25,
                    "bounced": 0.0,
                },
                "history_prior": 0.25,
                "history_prior_strength": 3.0,
                "age_saturation_days": 100,
                "confirmed_half_life_days": 10,
                "last_contact_half_life_days": 20,
                "invalid_factor": 0.5,
                "last_bounced_factor": 0.25,
            },
        }
    )
    day = dt.timedelta(days=1)
    used = (
        "phone", "mobile", True, None, None, ["CRM", "WEB"], 1, 1, 1, 1, 1, 0,
        AS_OF - 50 * day, AS_OF - 10 * day, AS_OF - 20 * day, False,
    )  # fmt: skip
    bounced = (*used[:2], False, *used[3:11], 1, *used[12:15], True)
    landline = (
        "phone",
        "fixed_line",
        True,
        None,
        None,
        ["THIRD_PARTY"],
        1,
        0,
        0,
        0,
        0,
        0,
        None,
        None,
        None,
        False,
    )
    created = AS_OF - 200 * day
    role = ("email", None, True, True, "corporate", ["CRM"], 1, 0, 0, 0, 0, 0, created, None, None, False)
    personal = ("email", None, True, False, "public", ["CRM"], 1, 0, 0, 0, 0, 0, created, None, None, False)
    disposable = (*personal[:4], "disposable", *personal[5:])
    rows = [used, bounced, landline, role, personal, disposable]
    df = spark.createDataFrame([(i, *r) for i, r in enumerate(rows, 1)], SIGNAL_SCHEMA)
    got = {r.id: r.base_score for r in score_contacts(df, settings, AS_OF).collect()}
    assert got == {1: 536, 2: 66, 3: 125, 4: 310, 5: 455, 6: 64}


def test_contactability_follows_the_kind_weights_and_the_rank_decay(spark: SparkSession) -> None:
    """The customers of the test above with e-mail weighted 2, SMS 0 and calls 1, and a rank
    decay of 0.2: X's calls reach 1 − (1 − 0.6)(1 − 0.5 × 0.2) = 0.64, so its score is
    1000 × (2 × 0.8 + 1 × 0.64) / 3 = 746.7 → 747 (700 with the defaults)."""
    clean = spark.createDataFrame(
        [("X", 800, 1, None, None), ("X", 600, None, 1, 1), ("X", 500, None, None, 2)],
        "customer_id string, score int, rank_email int, rank_mobile int, rank_phone int",
    )
    customers = spark.createDataFrame([("X", "H1")], "customer_id string, household_id string")
    settings = ContactSettings.model_validate(
        {"contactability": {"kind_weights": {"email": 2.0, "mobile": 0.0, "phone": 1.0}, "rank_decay": 0.2}}
    )
    got = customer_contactability(clean, customers, settings, ["email", "mobile", "phone"])
    assert [(r.customer_id, r.score, r.usable_contacts) for r in got.collect()] == [("X", 747, 3)]


def test_a_non_owner_keeps_the_configured_share_of_its_score(spark: SparkSession) -> None:
    """``shared.non_owner_factor`` 0.25: Anna's copy of Ivan's phone scores 40 × 0.25 = 10
    (20 with the default 0.5, test above)."""
    settings = SETTINGS.model_copy(
        update={"shared": SETTINGS.shared.model_copy(update={"non_owner_factor": 0.25})}
    )
    phone = "+79031355779"
    got = _owners(
        spark,
        [
            ("phone", phone, "TRAVIN", "H1", 800, dt.date(2020, 1, 1)),
            ("phone", phone, "KUROCHKINA", "H2", 40, dt.date(2010, 1, 1)),
        ],
        settings,
    )
    assert sorted((r.customer_id, r.owner, r.score) for r in got.collect()) == [
        ("KUROCHKINA", False, 10),
        ("TRAVIN", True, 800),
    ]
