"""The 0–1000 score of each clean contact (formula in ``docs/best_contact.md``).

score = round(1000 × Σ wᵢ·sᵢ / Σ wᵢ × Π factors), where every signal sᵢ is in [0, 1],
the sum runs over the signals that apply to the contact's type (``domain`` is for
e-mails only) and every factor is in [0, 1]. Each signal is monotone in its input,
so for instance an extra bounce can only lower the history signal, never raise it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contact_spark.config.contacts import OUTCOMES, ContactSettings

PHONE_SIGNALS = ("sources", "type", "uniqueness", "history", "age", "confirmed", "last_contact")
EMAIL_SIGNALS = (*PHONE_SIGNALS, "domain")


def _lookup(mapping: Mapping[str, float], key: Column, default: float) -> Column:
    """``mapping[key]`` as a Column, ``default`` when the key is missing or null."""
    if not mapping:
        return F.lit(default)
    as_map = F.create_map(*[x for k, v in sorted(mapping.items()) for x in (F.lit(k), F.lit(float(v)))])
    return F.coalesce(F.element_at(as_map, key), F.lit(default))


def _days_since(col: Column, as_of: dt.date) -> Column:
    """Whole days from ``col`` to ``as_of``; a date in the future counts as 0; null stays null.

    (``greatest`` skips nulls, so without the guard an unknown date would count as today.)
    """
    return F.when(col.isNotNull(), F.greatest(F.datediff(F.lit(as_of), F.to_date(col)), F.lit(0)))


def _half_life(col: Column, as_of: dt.date, days: int) -> Column:
    """1 today, 0.5 after ``days``, … ; 0 when the date is unknown."""
    return F.coalesce(F.pow(F.lit(0.5), _days_since(col, as_of) / F.lit(float(days))), F.lit(0.0))


def signals(df: DataFrame, settings: ContactSettings, as_of: dt.date) -> DataFrame:
    """Add one ``s_<signal>`` column per signal, each in [0, 1]."""
    sc = settings.score
    src = settings.sources
    is_email = F.col("contact_type") == "email"
    # Sources are a sorted array, so the sum is added up in the same order on every run.
    weight_sum = F.aggregate(
        F.col("sources"),
        F.lit(0.0),
        lambda acc, s: acc + _lookup(src.weights, s, src.default_weight),
    )
    values = sc.outcome_values
    n = sum((F.col(f"n_{o}") for o in OUTCOMES), F.lit(0))
    total = sum((F.col(f"n_{o}") * F.lit(values[o]) for o in OUTCOMES), F.lit(0.0))
    prior = F.lit(sc.history_prior * sc.history_prior_strength)
    email_type = F.when(F.col("email_role"), F.lit(sc.email_role)).otherwise(F.lit(sc.email_personal))
    return (
        df.withColumn("s_sources", F.least(weight_sum / F.lit(src.saturation), F.lit(1.0)))
        .withColumn(
            "s_type",
            F.when(is_email, email_type).otherwise(_lookup(sc.phone_types, F.col("phone_type"), 0.0)),
        )
        .withColumn("s_uniqueness", F.lit(1.0) / F.greatest(F.col("holders"), F.lit(1)))
        .withColumn("s_history", (prior + total) / (F.lit(sc.history_prior_strength) + n))
        .withColumn(
            "s_age",
            # least() skips nulls: guard it, or an unknown creation date would give 1, not 0.
            F.when(
                F.col("created_at").isNotNull(),
                F.least(
                    _days_since(F.col("created_at"), as_of) / F.lit(float(sc.age_saturation_days)), F.lit(1.0)
                ),
            ).otherwise(F.lit(0.0)),
        )
        .withColumn("s_confirmed", _half_life(F.col("last_confirmed_at"), as_of, sc.confirmed_half_life_days))
        .withColumn(
            "s_last_contact", _half_life(F.col("last_reached_at"), as_of, sc.last_contact_half_life_days)
        )
        .withColumn(
            "s_domain",
            F.when(is_email, _lookup(sc.domain_classes, F.col("email_domain_class"), 0.0)),
        )
    )


def score(df: DataFrame, settings: ContactSettings) -> DataFrame:
    """``base_score`` (0–1000, int) from the signals and the factors."""
    sc = settings.score
    w = sc.weights.model_dump()

    def weighted(names: tuple[str, ...]) -> Column:
        denominator = sum(w[s] for s in names)
        numerator = sum((F.lit(float(w[s])) * F.col(f"s_{s}") for s in names), F.lit(0.0))
        return numerator / F.lit(float(denominator)) if denominator > 0 else F.lit(0.0)

    is_email = F.col("contact_type") == "email"
    ratio = F.when(is_email, weighted(EMAIL_SIGNALS)).otherwise(weighted(PHONE_SIGNALS))
    validity = F.when(F.col("valid"), F.lit(1.0)).otherwise(F.lit(sc.invalid_factor))
    domain = F.when(is_email, _lookup(sc.domain_factors, F.col("email_domain_class"), 1.0)).otherwise(
        F.lit(1.0)
    )
    bounced = F.when(F.col("last_bounced"), F.lit(sc.last_bounced_factor)).otherwise(F.lit(1.0))
    raw = F.lit(1000.0) * ratio * validity * domain * bounced
    return df.withColumn(
        "base_score", F.least(F.greatest(F.round(raw, 0), F.lit(0.0)), F.lit(1000.0)).cast("int")
    )


def score_contacts(df: DataFrame, settings: ContactSettings, as_of: dt.date) -> DataFrame:
    """Signals then ``base_score``; the ``s_*`` columns stay for explanation."""
    return df.transform(signals, settings, as_of).transform(score, settings)
