"""Every For-Each-Customer rule of ``config.policy``, checked in Spark over plan and history.

Contacts are indexed by month: ``m = 0 .. horizon-1`` in the plan, ``m < 0`` in the
contact history (:func:`contact_events`), so windows reach back over the history before
the first month. One function per family of rule types, all rules of a family in one pass:

* :func:`_window_rules` – ``max_offers`` / ``max_packages`` (window sums of a weight);
* :func:`_campaign_rules` – ``max_campaigns`` (window sets of campaigns);
* :func:`_min_rule` – ``min_offers``, every window of every customer of the population;
* :func:`_pair_rules` – ``never_together`` / ``never_followed_by`` / ``only_after``.

:func:`check_policy` raises for a rule type none of them handles.

Written apart from the per-customer rule checker (:mod:`contact_spark.baseline.rules`) on
purpose, and it must stay so: that checker makes the greedy plan this validates and answers
the real-time check that tests/realtime/test_agreement.py holds against this code.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.config.policy import MinOffers
from contact_spark.config.scope import Scoped
from contact_spark.errors import ContactSparkError
from contact_spark.validation.frames import in_scope, month_index, month_of, violation_rows


def contact_events(plan: DataFrame, history: DataFrame, config: AppConfig) -> DataFrame:
    """Planned (m >= 0) and past (m < 0) contacts: customer_id, m, campaign, channel, n, planned."""
    horizon = config.run.horizon_months
    planned = (
        plan.filter(F.col("customer_id").isNotNull())
        .select("customer_id", month_index(F.col("month"), config).alias("m"), "campaign", "channel")
        .filter(F.col("m").between(0, horizon - 1))
        .dropDuplicates(["customer_id", "m", "campaign", "channel"])
        .select("*", F.lit(1).cast("long").alias("n"), F.lit(True).alias("planned"))
    )
    past = (
        history.select(
            "customer_id", month_index(F.col("contact_date"), config).alias("m"), "campaign", "channel"
        )
        .filter(F.col("m") < 0)
        .join(planned.select("customer_id").distinct(), "customer_id", "left_semi")
        .groupBy("customer_id", "m", "campaign", "channel")
        .agg(F.count(F.lit(1)).alias("n"))
        .select("*", F.lit(False).alias("planned"))
    )
    return planned.unionByName(past)


def _copy_key(per_campaign: Column, per_channel: Column, prefix: str = "") -> Column:
    """The rule copy a contact belongs to: its campaign and/or channel when the rule is split."""
    return F.concat_ws(
        "/",
        F.when(per_campaign, F.col(f"{prefix}campaign")),
        F.when(per_channel, F.col(f"{prefix}channel")),
    )


def _cells(scope: Scoped, config: AppConfig) -> list[str]:
    return [f"{c}/{h}" for c, h in scope.resolve(config).cells()]


def _tag(events: DataFrame, specs: DataFrame, cells: str) -> DataFrame:
    """Every event once per rule whose ``cells`` contain it (specs are tiny: broadcast)."""
    cell = F.concat(F.col("campaign"), F.lit("/"), F.col("channel"))
    return events.join(F.broadcast(specs), F.array_contains(F.col(cells), cell))


# Rule types with one ``campaigns`` x ``channels`` scope; every other type is a pair rule.
SCOPED_RULE_TYPES = ("max_offers", "min_offers", "max_packages", "max_campaigns")
_SPEC_SCHEMA = (
    "rule string, type string, w int, limit int, per_campaign boolean, per_channel boolean, "
    "cells array<string>, a_cells array<string>, b_cells array<string>"
)


def _specs(spark: SparkSession, config: AppConfig, types: tuple[str, ...]) -> DataFrame | None:
    rows = []
    for rule in config.policy.rules:
        if rule.type not in types:
            continue
        scoped = rule.type in SCOPED_RULE_TYPES
        scopes = rule.scopes()  # {"scope": ...} for a window rule, {"a": ..., "b": ...} for a pair rule
        rows.append(
            (
                rule.name,
                rule.type,
                rule.window_months,
                getattr(rule, "limit", None),
                rule.per_campaign,
                rule.per_channel,
                _cells(scopes["scope"], config) if scoped else None,
                None if scoped else _cells(scopes["a"], config),
                None if scoped else _cells(scopes["b"], config),
            )
        )
    return spark.createDataFrame(rows, _SPEC_SCHEMA) if rows else None


def _distinct_channels(config: AppConfig) -> Column:
    """Aggregate: how many distinct configured channels the group's rows use.

    A bit per channel OR-ed together, then counted: one pass, where ``countDistinct``
    plans a second aggregation and shuffle (the largest cost of validation at 100k).
    """
    channels = config.channel_names
    if len(channels) > 62:
        return F.countDistinct("channel")
    bit = F.create_map(*[x for i, h in enumerate(channels) for x in (F.lit(h), F.lit(1 << i).cast("long"))])
    return F.bit_count(F.bit_or(F.element_at(bit, F.col("channel"))))


def _window_rules(spark: SparkSession, events: DataFrame, config: AppConfig) -> list[DataFrame]:
    """max_offers / max_packages, all rules in one pass.

    For each rule copy and each plan month ``t`` holding a contact in scope, the window
    ``t-w+1 .. t`` is summed (history included). A violating window that ends at a month
    with no contact in scope contains one ending at its latest contact with as many, so
    checking windows that end at a contact month finds every violation with a planned
    contact in it; windows made of history alone are not the plan's fault.
    """
    specs = _specs(spark, config, ("max_offers", "max_packages"))
    if specs is None:
        return []
    per_month = (
        _tag(events, specs, "cells")
        .withColumn("copy", _copy_key(F.col("per_campaign"), F.col("per_channel")))
        .groupBy("customer_id", "rule", "type", "w", "limit", "copy", "m")
        .agg(
            F.sum("n").alias("_contacts"),
            _distinct_channels(config).alias("_packages"),
            F.sum(F.when(F.col("planned"), F.col("n")).otherwise(0)).alias("p"),
        )
        .select(
            "customer_id",
            "rule",
            "type",
            "w",
            "limit",
            "copy",
            "m",
            "p",
            F.when(F.col("type") == "max_packages", F.col("_packages"))
            .otherwise(F.col("_contacts"))
            .cast("long")
            .alias("weight"),
        )
    )
    # Each row's window sum is a range frame over the rule copy's months (one frame per
    # distinct width, all in one sort): no self-join of every month with every other.
    months = Window.partitionBy("customer_id", "rule", "copy").orderBy("m")
    widths = sorted(
        {r.window_months for r in config.policy.rules if r.type in ("max_offers", "max_packages")}
    )

    def window_sum(column: str) -> Column:
        sums = [(w, F.sum(column).over(months.rangeBetween(-(w - 1), 0))) for w in widths]
        total = F.when(F.col("w") == sums[0][0], sums[0][1])
        for width, summed in sums[1:]:
            total = total.when(F.col("w") == width, summed)
        return total

    windows = (
        per_month.select("*", window_sum("weight").alias("total"), window_sum("p").alias("planned_in"))
        .filter(F.col("m") >= 0)
        .filter((F.col("planned_in") > 0) & (F.col("total") > F.col("limit")))
    )
    return [
        violation_rows(
            windows,
            F.col("rule"),
            "policy",
            month_of(F.col("m"), config),
            F.concat(
                F.col("type"),
                F.lit(": "),
                F.col("total").cast("string"),
                F.when(F.col("type") == "max_packages", F.lit(" packages")).otherwise(F.lit(" contacts")),
                F.lit(" in the "),
                F.col("w").cast("string"),
                F.lit("-month window ending here (limit "),
                F.col("limit").cast("string"),
                F.lit(", "),
                F.col("planned_in").cast("string"),
                F.lit(" planned)"),
                F.when(F.col("copy") != "", F.concat(F.lit(" for "), F.col("copy"))).otherwise(F.lit("")),
            ),
        )
    ]


def _campaign_rules(spark: SparkSession, events: DataFrame, config: AppConfig) -> list[DataFrame]:
    """max_campaigns, all rules in one pass.

    A campaign counts once per window however many of the window's months (history
    included) contact it, so the window total is a set size, not a sum: each row is one
    (rule copy, month, campaign) and ``collect_set`` of the campaigns over the range frame
    ``m-w+1 .. m`` gives the window ending at ``m``. As for max_offers, only windows ending
    at a month with a contact in scope are checked (a violating window contains one ending
    at its latest contact with the same campaigns) and a window needs a planned contact.
    """
    specs = _specs(spark, config, ("max_campaigns",))
    if specs is None:
        return []
    per_campaign = (
        _tag(events, specs, "cells")
        # per_campaign is refused for this type by the config; per_channel splits by channel.
        .withColumn("copy", _copy_key(F.lit(False), F.col("per_channel")))
        .groupBy("customer_id", "rule", "w", "limit", "copy", "m", "campaign")
        .agg(F.sum(F.when(F.col("planned"), F.col("n")).otherwise(0)).alias("p"))
    )
    months = Window.partitionBy("customer_id", "rule", "copy").orderBy("m")
    widths = sorted({r.window_months for r in config.policy.rules if r.type == "max_campaigns"})

    def over_window(agg: Column) -> Column:
        frames = [(w, agg.over(months.rangeBetween(-(w - 1), 0))) for w in widths]
        out = F.when(F.col("w") == frames[0][0], frames[0][1])
        for width, framed in frames[1:]:
            out = out.when(F.col("w") == width, framed)
        return out

    windows = (
        per_campaign.select(
            "customer_id",
            "rule",
            "limit",
            "w",
            "copy",
            "m",
            over_window(F.collect_set("campaign")).alias("_campaigns"),
            over_window(F.sum("p")).alias("planned_in"),
        )
        .filter(F.col("m") >= 0)
        .filter((F.col("planned_in") > 0) & (F.size("_campaigns") > F.col("limit")))
        # Rows of one month share the range frame: one violation per window.
        .dropDuplicates(["customer_id", "rule", "copy", "m"])
    )
    return [
        violation_rows(
            windows,
            F.col("rule"),
            "policy",
            month_of(F.col("m"), config),
            F.concat(
                F.lit("max_campaigns: "),
                F.size("_campaigns").cast("string"),
                F.lit(" campaigns ("),
                F.array_join(F.array_sort("_campaigns"), ", "),
                F.lit(") in the "),
                F.col("w").cast("string"),
                F.lit("-month window ending here (limit "),
                F.col("limit").cast("string"),
                F.lit(", "),
                # The planned contacts, as for max_offers: a planned contact added to a window
                # already over the limit (its campaign already counted) changes the row too.
                F.col("planned_in").cast("string"),
                F.lit(" planned)"),
                F.when(F.col("copy") != "", F.concat(F.lit(" for "), F.col("copy"))).otherwise(F.lit("")),
            ),
        )
    ]


def _min_rule(
    spark: SparkSession, events: DataFrame, population: DataFrame, rule: MinOffers, config: AppConfig
) -> DataFrame:
    """min_offers: every window ending at every plan month, for every planned-for customer."""
    names = rule.resolve(config)
    w, limit = rule.window_months, rule.limit
    per_campaign, per_channel = rule.per_campaign, rule.per_channel
    copies = sorted(
        {"/".join(([c] if per_campaign else []) + ([h] if per_channel else [])) for c, h in names.cells()}
    )
    grid = population.crossJoin(
        F.broadcast(
            spark.createDataFrame(
                [(k, t) for k in copies for t in range(config.run.horizon_months)], "copy string, t int"
            )
        )
    )
    per_month = (
        events.filter(in_scope(names))
        .withColumn("copy", _copy_key(F.lit(per_campaign), F.lit(per_channel)))
        .groupBy("customer_id", "copy", "m")
        .agg(F.sum("n").alias("w"))
    )
    joined = grid.alias("g").join(
        per_month.alias("e"),
        (F.col("g.customer_id") == F.col("e.customer_id"))
        & (F.col("g.copy") == F.col("e.copy"))
        & F.col("e.m").between(F.col("g.t") - (w - 1), F.col("g.t")),
        "left",
    )
    counted = joined.groupBy(
        F.col("g.customer_id").alias("customer_id"), F.col("g.copy").alias("copy"), "g.t"
    ).agg(F.coalesce(F.sum("e.w"), F.lit(0)).alias("total"))
    return violation_rows(
        counted.filter(F.col("total") < limit),
        rule.name,
        "policy",
        month_of(F.col("t"), config),
        F.concat(
            F.lit("min_offers: "),
            F.col("total").cast("string"),
            F.lit(f" contacts in the {w}-month window ending here (at least {limit})"),
            F.when(F.col("copy") != "", F.concat(F.lit(" for "), F.col("copy"))).otherwise(F.lit("")),
        ),
    )


def _side(events: DataFrame, specs: DataFrame, side: str) -> DataFrame:
    tagged = _tag(events, specs, f"{side}_cells")
    rule_columns = ["type", "w", "per_campaign", "per_channel"] if side == "b" else []
    return tagged.select(
        "customer_id",
        "rule",
        *rule_columns,
        *[F.col(c).alias(f"{side}_{c}") for c in ("m", "campaign", "channel", "planned")],
    )


def _pair_rules(spark: SparkSession, events: DataFrame, config: AppConfig) -> list[DataFrame]:
    """never_together / never_followed_by / only_after, all rules in one join each.

    With per_campaign / per_channel, ``a`` and ``b`` must share the campaign / channel.
    A pair is the plan's fault only if one side is planned (history is never repaired).
    """
    specs = _specs(spark, config, ("never_together", "never_followed_by", "only_after"))
    if specs is None:
        return []
    keys = ["customer_id", "rule"]
    a = _side(events, specs, "a")
    b = _side(events, specs, "b")
    same_copy = (~F.col("per_campaign") | (F.col("a_campaign") == F.col("b_campaign"))) & (
        ~F.col("per_channel") | (F.col("a_channel") == F.col("b_channel"))
    )
    describe = lambda s: F.concat(  # noqa: E731
        F.col(f"{s}_campaign"),
        F.lit("/"),
        F.col(f"{s}_channel"),
        F.lit(" in "),
        F.date_format(month_of(F.col(f"{s}_m"), config), "yyyy-MM"),
    )
    gap = F.col("b_m") - F.col("a_m")
    different = ~(
        (gap == 0) & (F.col("a_campaign") == F.col("b_campaign")) & (F.col("a_channel") == F.col("b_channel"))
    )
    together = (F.col("type") == "never_together") & (F.abs(gap) < F.col("w")) & different
    together = together & (F.col("a_planned") | F.col("b_planned"))
    followed = (F.col("type") == "never_followed_by") & gap.between(1, F.col("w")) & F.col("b_planned")
    pairs = (
        a.join(b, keys)
        .filter(same_copy & (together | followed))
        .dropDuplicates(
            ["customer_id", "rule", "a_m", "a_campaign", "a_channel", "b_m", "b_campaign", "b_channel"]
        )
    )
    bad_pairs = violation_rows(
        pairs,
        F.col("rule"),
        "policy",
        month_of(F.greatest(F.col("a_m"), F.col("b_m")), config),
        F.concat(F.col("type"), F.lit(": "), describe("b"), F.lit(" with "), describe("a")),
    )
    # only_after: a planned b needs an a earlier (within the lookback, history included).
    b_only = b.filter((F.col("type") == "only_after") & F.col("b_planned"))
    before = (F.col("a_m") < F.col("b_m")) & (F.col("w").isNull() | (gap <= F.col("w"))) & same_copy
    a_only = a.join(F.broadcast(specs.filter(F.col("type") == "only_after").select("rule")), "rule")
    lonely = (
        b_only.join(a_only, keys, "left")
        .groupBy("customer_id", "rule", "w", "b_m", "b_campaign", "b_channel")
        .agg(F.max(F.coalesce(before, F.lit(False)).cast("int")).alias("_ok"))
        .filter(F.col("_ok") == 0)
    )
    bad_after = violation_rows(
        lonely,
        F.col("rule"),
        "policy",
        month_of(F.col("b_m"), config),
        F.concat(
            F.lit("only_after: "),
            describe("b"),
            F.lit(" without a contact in scope a "),
            F.when(F.col("w").isNull(), F.lit("in any earlier month")).otherwise(
                F.concat(F.lit("in the "), F.col("w").cast("string"), F.lit(" months before"))
            ),
        ),
    )
    return [bad_pairs, bad_after]


HANDLED_RULE_TYPES = (
    "max_offers",
    "max_packages",
    "max_campaigns",
    "min_offers",
    "never_together",
    "never_followed_by",
    "only_after",
)


def check_policy(
    spark: SparkSession, events: DataFrame, population: DataFrame, config: AppConfig
) -> list[DataFrame]:
    """Every policy rule's violations; raises for a rule type no check here handles.

    ``events`` are :func:`contact_events` (plus, for min rules, the history of the
    population's customers without a planned contact); ``population`` are the customers
    min rules apply to.

    Failing loudly matters: a rule type added to the config but not to the validator
    would otherwise pass every plan unchecked.
    """
    unknown = sorted({r.type for r in config.policy.rules} - set(HANDLED_RULE_TYPES))
    if unknown:
        raise ContactSparkError(f"the plan validator has no check for policy rule type(s) {unknown}")
    out = (
        _window_rules(spark, events, config)
        + _campaign_rules(spark, events, config)
        + _pair_rules(spark, events, config)
    )
    for rule in config.policy.rules:
        if isinstance(rule, MinOffers):
            out.append(_min_rule(spark, events, population, rule, config))
    return out
