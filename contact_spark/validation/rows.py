"""Checks of single plan rows: row shape, consent, eligibility and best contact.

* ``plan``        – customer id present, known campaign/channel, month inside the horizon,
                    no duplicate;
* ``consent``     – from the customers table again (fail-closed: a null flag is a "no"):
                    privacy consent, churn risk, outbound, the channel's opt-out, unknown or
                    duplicated customer id;
* ``eligibility`` – the (customer, campaign, channel) candidate exists and is eligible;
* ``best_contact``– the contact is the customer's best contact for the channel (highest score
                    in ``best_contacts``, of the channel's contact kind). A plan row names its
                    contact by the raw value (``contact``: the plan, which execution reads) or
                    by its key (``contact_id``: the greedy baseline); either is matched.

All of them in one pass over the plan joined with its inputs; nothing is collected.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.io.columns import case_when
from contact_spark.validation.frames import ERROR, month_index


def _flags(customers: DataFrame, config: AppConfig) -> DataFrame:
    """Per customer_id: consent and contact flags, fail-closed (null = not allowed)."""

    def blocked(name: str) -> Column:
        # A null flag, or any duplicate row with the flag, blocks the customer.
        return F.max(F.coalesce(F.col(name).cast("boolean"), F.lit(True)).cast("int")).alias(f"_{name}")

    return customers.groupBy("customer_id").agg(
        F.min(F.coalesce(F.col("privacy_consent").cast("boolean"), F.lit(False)).cast("int")).alias(
            "_consent"
        ),
        blocked("churn_risk"),
        blocked("outbound"),
        *[blocked(f"optout_{c.lower()}") for c in config.channel_names],
        F.count(F.lit(1)).alias("_copies"),
    )


def _check(cond: Column, rule: str, kind: str, detail: Column) -> Column:
    return F.when(
        cond, F.struct(F.lit(rule).alias("rule"), F.lit(kind).alias("kind"), detail.alias("detail"))
    )


def check_rows(
    plan: DataFrame,
    customers: DataFrame,
    eligibility: DataFrame,
    best_contacts: DataFrame,
    config: AppConfig,
) -> list[DataFrame]:
    """Every check of a single plan row, in one pass over the plan joined with its inputs.

    * plan: customer id present, known campaign/channel, month inside the horizon, no duplicate;
    * consent (from ``customers``, fail-closed): privacy consent true, churn risk, outbound and
      the channel's opt-out false (null counts against), customer known and not duplicated;
    * eligibility: the candidate exists and is eligible;
    * best contact: the contact is a top-scored best contact of the channel, of its kind.
    """
    horizon = config.run.horizon_months
    t = month_index(F.col("month"), config)
    cell = F.concat(F.coalesce("campaign", F.lit("null")), F.lit("/"), F.coalesce("channel", F.lit("null")))
    kinds = F.create_map(
        *[x for c in config.channel_names for x in (F.lit(c), F.lit(config.channels[c].contact_kind))]
    )
    elig = eligibility.groupBy("customer_id", "campaign", "channel").agg(
        F.min(F.coalesce(F.col("eligible"), F.lit(False)).cast("int")).alias("_eligible"),
        F.array_distinct(
            F.flatten(F.collect_list(F.coalesce("reasons", F.array().cast("array<string>"))))
        ).alias("_reasons"),
    )
    top = best_contacts.groupBy("customer_id", "channel").agg(F.max("score").alias("_top"))
    # The plan row's contact among the customer's best contacts (top score, right kind): by
    # the raw value when the plan carries it, else by the key.
    ref, best_ref = ("contact", "value") if "contact" in plan.columns else ("contact_id", "contact_id")
    match = best_contacts.groupBy(
        "customer_id", "channel", F.col(best_ref).alias("_ref"), F.col("contact_kind").alias("_kind")
    ).agg(F.max("score").alias("_score"))
    rows = (
        plan.withColumn("_ref", F.col(ref))
        .withColumn("_row", F.monotonically_increasing_id())
        .withColumn(
            "_dupes",
            F.count(F.lit(1)).over(Window.partitionBy("customer_id", "month", "campaign", "channel")),
        )
        .join(_flags(customers, config), "customer_id", "left")
        .join(elig, ["customer_id", "campaign", "channel"], "left")
        .join(top, ["customer_id", "channel"], "left")
        .join(match, ["customer_id", "channel", "_ref"], "left")
        .withColumn(
            "_best_ok",
            (F.col("_score") == F.col("_top")) & (F.col("_kind") == F.element_at(kinds, F.col("channel"))),
        )
        .groupBy("_row", "customer_id", "month", "campaign", "channel")
        .agg(
            *[
                F.first(c, ignorenulls=True).alias(c)
                for c in (
                    "_dupes",
                    "_consent",
                    "_churn_risk",
                    "_outbound",
                    "_copies",
                    "_eligible",
                    "_reasons",
                    "_top",
                    "_score",
                    *[f"_optout_{h.lower()}" for h in config.channel_names],
                )
            ],
            F.max(F.coalesce(F.col("_best_ok"), F.lit(False)).cast("int")).alias("_best"),
            F.max(F.col("_ref").isNull().cast("int")).alias("_no_contact"),
        )
    )
    optout = case_when(
        (F.col("channel") == channel, F.col(f"_optout_{channel.lower()}")) for channel in config.channel_names
    )
    known = F.col("_copies").isNotNull()
    bad_month = (
        F.col("month").isNull() | (F.dayofmonth(F.col("month").cast("date")) != 1) | (t < 0) | (t >= horizon)
    )
    unknown_cell = ~F.coalesce(F.col("campaign").isin(config.campaign_names), F.lit(False)) | ~F.coalesce(
        F.col("channel").isin(config.channel_names), F.lit(False)
    )
    best_detail = (
        F.when(F.col("_no_contact") == 1, F.lit("no contact on the plan row"))
        .when(F.col("_top").isNull(), F.lit("the customer has no best contact for the channel"))
        .when(F.col("_score").isNull(), F.lit("the contact is not one of the customer's best contacts"))
        .otherwise(
            F.concat(
                F.lit("contact scored "),
                F.col("_score").cast("string"),
                F.lit(" (or of another kind) but the best scores "),
                F.col("_top").cast("string"),
            )
        )
    )
    checks = [
        _check(F.col("customer_id").isNull(), "null_customer", "plan", F.lit("plan row without customer_id")),
        _check(
            bad_month,
            "horizon",
            "plan",
            F.concat(
                F.lit("month "),
                F.coalesce(F.col("month").cast("string"), F.lit("null")),
                F.lit(
                    f" is not the first day of a month from {config.run.first_month:%Y-%m} for {horizon} months"
                ),
            ),
        ),
        _check(
            unknown_cell,
            "unknown_cell",
            "plan",
            F.concat(F.lit("campaign/channel "), cell, F.lit(" is not configured")),
        ),
        _check(
            F.col("_dupes") > 1,
            "duplicate_contact",
            "plan",
            F.concat(cell, F.lit(" planned "), F.col("_dupes").cast("string"), F.lit(" times in the month")),
        ),
        _check(~known, "unknown_customer", "consent", F.lit("customer_id not in the customers table")),
        _check(
            known & (F.col("_copies") > 1),
            "duplicate_customer_id",
            "consent",
            F.lit("customer_id appears more than once in customers"),
        ),
        _check(
            known & (F.col("_consent") != 1),
            "privacy_consent",
            "consent",
            F.concat(F.lit("no privacy consent (false or null): "), cell),
        ),
        _check(
            known & (F.col("_churn_risk") == 1),
            "churn_risk",
            "consent",
            F.concat(F.lit("churn risk (true or null): "), cell),
        ),
        _check(
            known & (F.col("_outbound") == 1),
            "outbound",
            "consent",
            F.concat(F.lit("outbound (true or null): "), cell),
        ),
        _check(
            known & ~unknown_cell & F.coalesce(optout == 1, F.lit(True)),
            "channel_opt_out",
            "consent",
            F.concat(F.lit("opted out of the channel (true or null): "), cell),
        ),
        _check(
            F.coalesce(F.col("_eligible"), F.lit(0)) != 1,
            "eligibility",
            "eligibility",
            F.concat(
                cell,
                F.when(F.col("_eligible").isNull(), F.lit(" has no eligibility row")).otherwise(
                    F.concat(F.lit(" is not eligible: "), F.concat_ws(",", F.col("_reasons")))
                ),
            ),
        ),
        _check(
            F.col("_best") != 1,
            "best_contact",
            "best_contact",
            F.concat(F.coalesce("channel", F.lit("null")), F.lit(": "), best_detail),
        ),
    ]
    found = rows.select(
        "customer_id", "month", F.explode(F.filter(F.array(*checks), lambda c: c.isNotNull())).alias("v")
    )
    return [
        found.select(
            F.col("customer_id").cast("string").alias("customer_id"),
            F.col("v.rule").alias("rule"),
            F.col("v.kind").alias("kind"),
            F.col("month").cast("date").alias("month"),
            F.col("v.detail").alias("detail"),
            F.lit(ERROR).alias("severity"),
        )
    ]
