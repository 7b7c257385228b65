"""Every check of a finished plan, written in Spark independently of the solver.

A plan row is ``(customer_id, month, campaign, channel, contact)``. The checks:

* ``plan``        – row shape: known campaign/channel, month inside the horizon, no duplicate;
* ``consent``     – from the customers table again (fail-closed: a null flag is a "no"):
                    privacy consent, churn risk, outbound, the channel's opt-out, unknown or
                    duplicated customer id;
* ``eligibility`` – the (customer, campaign, channel) candidate exists and is eligible;
* ``best_contact``– the contact is the customer's best contact for the channel (highest score
                    in ``best_contacts``, of the channel's contact kind);
* ``policy``      – every For-Each-Customer rule of ``config.policy`` (an unknown rule type
                    raises), windows reaching back over the contact history (month index
                    < 0) before the first month;
* ``capacity``    – every capacity (contacts / sum / average, month exceptions) and spread
                    rule, with zero tolerance: sums are exact decimals, not floats.

Only small aggregates (capacity usage, at most rules × months rows) are ever collected; the
per-customer checks are joins and window functions that stay in Spark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.errors import ContactSparkError

VIOLATION_SCHEMA = (
    "run_id string, customer_id string, rule string, kind string, month date, detail string, severity string"
)
VIOLATION_COLUMNS = ("run_id", "customer_id", "rule", "kind", "month", "detail", "severity")
ERROR, WARNING = "ERROR", "WARNING"
CAPACITY_USAGE_SCHEMA = (
    "rule string, measure string, month date, usage double, bound_min double, bound_max double, "
    "violated boolean, under_min_only boolean"
)
# Exact decimal arithmetic for sums: no float rounding can hide (or invent) an overrun.
DECIMAL = "decimal(38,12)"
BUILTIN_ATTRIBUTES = ("cost", "expected_value", "propensity")


class PlanValidationError(ContactSparkError):
    """The plan breaks at least one rule; the rows are in the violations table."""

    def __init__(self, run_id: str, count: int, table: str, summary: str) -> None:
        self.run_id = run_id
        self.count = count
        self.table = table
        super().__init__(
            f"plan of run '{run_id}' has {count} violation(s) ({summary}); "
            f"see table '{table}' where run_id = '{run_id}'"
        )


@dataclass(frozen=True)
class ValidationInputs:
    """What a plan is checked against. ``quarantine`` (customer_id) is excluded from min rules.

    ``reported_shortfalls`` (``rule, month``; month null for a yearly rule) are the min
    capacities the plan stage reported it could not meet: unless
    ``validation.strict_min_capacity`` is set, a plan below such a min gives a WARNING row
    instead of an ERROR. Everything else is an ERROR.
    """

    plan: DataFrame
    customers: DataFrame
    eligibility: DataFrame
    best_contacts: DataFrame
    contact_history: DataFrame
    quarantine: DataFrame | None = None
    reported_shortfalls: DataFrame | None = None
    applied_events: DataFrame | None = (
        None  # trigger events applied to the plan (customer_id, event_type, event_time)
    )


# --------------------------------------------------------------------------- helpers
def _names(value: object, configured: list[str]) -> list[str]:
    return list(configured) if value == "any" else list(value)  # type: ignore[arg-type]


def _in(scope_campaigns: list[str], scope_channels: list[str], prefix: str = "") -> Column:
    return F.col(f"{prefix}campaign").isin(scope_campaigns) & F.col(f"{prefix}channel").isin(scope_channels)


def _first(config: AppConfig) -> Column:
    return F.lit(config.run.first_month).cast("date")


def month_index(col: Column, config: AppConfig) -> Column:
    """Months from the plan's first month (0 = first month, -1 = the month before)."""
    return F.months_between(F.trunc(col.cast("date"), "month"), _first(config)).cast("int")


def _month_of(index: Column, config: AppConfig) -> Column:
    return F.add_months(_first(config), index)


def _violations(
    df: DataFrame,
    rule: Column | str,
    kind: str,
    month: Column | None,
    detail: Column,
    severity: Column | None = None,
) -> DataFrame:
    return df.select(
        F.col("customer_id").cast("string").alias("customer_id"),
        (F.lit(rule) if isinstance(rule, str) else rule).alias("rule"),
        F.lit(kind).alias("kind"),
        (month if month is not None else F.lit(None)).cast("date").alias("month"),
        detail.alias("detail"),
        (severity if severity is not None else F.lit(ERROR)).alias("severity"),
    )


def _empty(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [], "customer_id string, rule string, kind string, month date, detail string, severity string"
    )


def _union(spark: SparkSession, frames: list[DataFrame]) -> DataFrame:
    # A frame without a severity (e.g. the trigger checks) holds ERROR rows.
    frames = [f if "severity" in f.columns else f.withColumn("severity", F.lit(ERROR)) for f in frames]
    return reduce(DataFrame.unionByName, frames, _empty(spark))


# ------------------------------------------------------------------ per-row checks
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
    # The plan row's contact among the customer's best contacts (top score, right kind).
    match = best_contacts.groupBy(
        "customer_id", "channel", F.col("value").alias("contact"), F.col("contact_kind").alias("_kind")
    ).agg(F.max("score").alias("_score"))
    rows = (
        plan.withColumn("_row", F.monotonically_increasing_id())
        .withColumn(
            "_dupes",
            F.count(F.lit(1)).over(Window.partitionBy("customer_id", "month", "campaign", "channel")),
        )
        .join(_flags(customers, config), "customer_id", "left")
        .join(elig, ["customer_id", "campaign", "channel"], "left")
        .join(top, ["customer_id", "channel"], "left")
        .join(match, ["customer_id", "channel", "contact"], "left")
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
            F.max(F.col("contact").isNull().cast("int")).alias("_no_contact"),
        )
    )
    optout = None
    for channel in config.channel_names:
        col = F.col(f"_optout_{channel.lower()}")
        optout = (
            F.when(F.col("channel") == channel, col)
            if optout is None
            else optout.when(F.col("channel") == channel, col)
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


# ------------------------------------------------------------------------- policy
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


def _cells(scope_campaigns: object, scope_channels: object, config: AppConfig) -> list[str]:
    return [
        f"{c}/{h}"
        for c in _names(scope_campaigns, config.campaign_names)
        for h in _names(scope_channels, config.channel_names)
    ]


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
        rows.append(
            (
                rule.name,
                rule.type,
                rule.window_months,
                getattr(rule, "limit", None),
                rule.per_campaign,
                rule.per_channel,
                _cells(rule.campaigns, rule.channels, config) if scoped else None,  # type: ignore[union-attr]
                None if scoped else _cells(rule.a.campaigns, rule.a.channels, config),  # type: ignore[union-attr]
                None if scoped else _cells(rule.b.campaigns, rule.b.channels, config),  # type: ignore[union-attr]
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
        _violations(
            windows,
            F.col("rule"),
            "policy",
            _month_of(F.col("m"), config),
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
        .agg(F.max(F.col("planned").cast("int")).alias("p"))
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
        _violations(
            windows,
            F.col("rule"),
            "policy",
            _month_of(F.col("m"), config),
            F.concat(
                F.lit("max_campaigns: "),
                F.size("_campaigns").cast("string"),
                F.lit(" campaigns ("),
                F.array_join(F.array_sort("_campaigns"), ", "),
                F.lit(") in the "),
                F.col("w").cast("string"),
                F.lit("-month window ending here (limit "),
                F.col("limit").cast("string"),
                F.lit(")"),
                F.when(F.col("copy") != "", F.concat(F.lit(" for "), F.col("copy"))).otherwise(F.lit("")),
            ),
        )
    ]


def _min_rule(
    spark: SparkSession, events: DataFrame, population: DataFrame, rule: object, config: AppConfig
) -> DataFrame:
    """min_offers: every window ending at every plan month, for every planned-for customer."""
    campaigns = _names(rule.campaigns, config.campaign_names)  # type: ignore[attr-defined]
    channels = _names(rule.channels, config.channel_names)  # type: ignore[attr-defined]
    w, limit = rule.window_months, rule.limit  # type: ignore[attr-defined]
    per_campaign, per_channel = rule.per_campaign, rule.per_channel  # type: ignore[attr-defined]
    copies = sorted(
        {
            "/".join(([c] if per_campaign else []) + ([h] if per_channel else []))
            for c in campaigns
            for h in channels
        }
    )
    grid = population.crossJoin(
        F.broadcast(
            spark.createDataFrame(
                [(k, t) for k in copies for t in range(config.run.horizon_months)], "copy string, t int"
            )
        )
    )
    per_month = (
        events.filter(_in(campaigns, channels))
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
    return _violations(
        counted.filter(F.col("total") < limit),
        rule.name,  # type: ignore[attr-defined]
        "policy",
        _month_of(F.col("t"), config),
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
        F.date_format(_month_of(F.col(f"{s}_m"), config), "yyyy-MM"),
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
    bad_pairs = _violations(
        pairs,
        F.col("rule"),
        "policy",
        _month_of(F.greatest(F.col("a_m"), F.col("b_m")), config),
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
    bad_after = _violations(
        lonely,
        F.col("rule"),
        "policy",
        _month_of(F.col("b_m"), config),
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
        if rule.type == "min_offers":
            out.append(_min_rule(spark, events, population, rule, config))
    return out


# ----------------------------------------------------------------------- capacity
def plan_attributes(
    plan: DataFrame, eligibility: DataFrame, customers: DataFrame, config: AppConfig
) -> DataFrame:
    """Plan rows with every attribute a capacity may measure (cost, propensity, ...)."""
    costs = F.create_map(
        *[x for c in config.channel_names for x in (F.lit(c), F.lit(config.channels[c].cost))]
    )
    cand = eligibility.groupBy("customer_id", "campaign", "channel").agg(
        F.max(F.col("propensity").cast("double")).alias("propensity"),
        F.max(F.col("expected_value").cast("double")).alias("_ev"),
    )
    rows = plan.drop("propensity").join(cand, ["customer_id", "campaign", "channel"], "left")
    rows = rows.withColumn("cost", F.element_at(costs, F.col("channel")).cast("double"))
    rows = rows.withColumn("expected_value", F.col("_ev")).drop("_ev")
    columns = {
        r.column
        for r in config.capacities.rules
        if r.column is not None and r.column not in BUILTIN_ATTRIBUTES
    }
    if columns:
        # The largest value of a duplicated customer: over-counting is the safe side of a max.
        values = customers.groupBy("customer_id").agg(
            *[F.max(F.col(c).cast("double")).alias(c) for c in sorted(columns)]
        )
        rows = rows.join(values, "customer_id", "left")
    return rows


def capacity_usage(spark: SparkSession, attributed: DataFrame, config: AppConfig) -> DataFrame:
    """One row per capacity constraint (rule × month, or rule for a year): usage, bounds, violated."""
    months = config.run.months()
    horizon = len(months)
    grid = spark.createDataFrame([(m,) for m in months], "month date")
    frames = []
    for rule in config.capacities.rules:
        campaigns = _names(rule.campaigns, config.campaign_names)
        channels = _names(rule.channels, config.channel_names)
        scoped = attributed.filter(_in(campaigns, channels))
        attr = (
            F.coalesce(F.col(rule.column).cast(DECIMAL), F.lit(0).cast(DECIMAL)) if rule.column else F.lit(1)
        )
        aggs = [F.count(F.lit(1)).alias("_c"), F.sum(attr.cast(DECIMAL)).alias("_s")]
        if rule.period == "month":
            agg = grid.join(
                scoped.groupBy(F.col("month").cast("date").alias("month")).agg(*aggs), "month", "left"
            )
            bounds = {e.month: e for e in rule.exceptions}
            lo = hi = None
            for m in months:
                e = bounds.get(m)
                mn = e.min if e is not None and e.min is not None else rule.min
                mx = e.max if e is not None and e.max is not None else rule.max
                cond = F.col("month") == F.lit(m)
                lo = (
                    F.when(cond, F.lit(mn).cast("double"))
                    if lo is None
                    else lo.when(cond, F.lit(mn).cast("double"))
                )
                hi = (
                    F.when(cond, F.lit(mx).cast("double"))
                    if hi is None
                    else hi.when(cond, F.lit(mx).cast("double"))
                )
            agg = agg.withColumn("_lo", lo).withColumn("_hi", hi)
        else:
            agg = scoped.agg(*aggs).select(
                F.lit(None).cast("date").alias("month"),
                "_c",
                "_s",
                F.lit(rule.min).cast("double").alias("_lo"),
                F.lit(rule.max).cast("double").alias("_hi"),
            )
        c = F.coalesce(F.col("_c"), F.lit(0)).cast(DECIMAL)
        s = F.coalesce(F.col("_s"), F.lit(0)).cast(DECIMAL)
        lo_d, hi_d = F.col("_lo").cast(DECIMAL), F.col("_hi").cast(DECIMAL)
        if rule.measure == "average":
            usage = F.when(c > 0, s / c)
            over = s > hi_d * c
            under = (c > 0) & (s < lo_d * c)
        else:
            usage = c if rule.measure == "contacts" else s
            over = usage > hi_d
            under = usage < lo_d
        frames.append(
            agg.select(
                F.lit(rule.name).alias("rule"),
                F.lit(rule.measure).alias("measure"),
                "month",
                usage.cast("double").alias("usage"),
                F.col("_lo").alias("bound_min"),
                F.col("_hi").alias("bound_max"),
                (F.coalesce(over, F.lit(False)) | F.coalesce(under, F.lit(False))).alias("violated"),
                (~F.coalesce(over, F.lit(False)) & F.coalesce(under, F.lit(False))).alias("under_min_only"),
            )
        )
    for spread in config.capacities.spread:
        campaigns = _names(spread.campaigns, config.campaign_names)
        channels = _names(spread.channels, config.channel_names)
        counts = grid.join(
            attributed.filter(_in(campaigns, channels))
            .groupBy(F.col("month").cast("date").alias("month"))
            .agg(F.count(F.lit(1)).alias("_c")),
            "month",
            "left",
        ).withColumn("_c", F.coalesce("_c", F.lit(0)).cast(DECIMAL))
        total = F.sum("_c").over(Window.partitionBy())
        tol = F.lit(str(spread.tolerance)).cast(DECIMAL)
        frames.append(
            counts.withColumn("_total", total).select(
                F.lit(spread.name).alias("rule"),
                F.lit("spread").alias("measure"),
                "month",
                F.col("_c").cast("double").alias("usage"),
                ((1 - tol) * F.col("_total") / horizon).cast("double").alias("bound_min"),
                ((1 + tol) * F.col("_total") / horizon).cast("double").alias("bound_max"),
                (
                    (F.col("_c") * horizon > (1 + tol) * F.col("_total"))
                    | (F.col("_c") * horizon < (1 - tol) * F.col("_total"))
                ).alias("violated"),
                (F.col("_c") * horizon < (1 - tol) * F.col("_total")).alias("under_min_only"),
            )
        )
    return reduce(DataFrame.unionByName, frames, spark.createDataFrame([], CAPACITY_USAGE_SCHEMA))


def check_capacity(usage: DataFrame, accepted: DataFrame | None = None) -> list[DataFrame]:
    """Every capacity row outside its bounds; a min shortfall listed in ``accepted``
    (``rule, month``) is a WARNING, every other row an ERROR."""
    bad = usage.filter(F.col("violated")).withColumn("customer_id", F.lit(None).cast("string"))
    severity = F.lit(ERROR)
    if accepted is not None:
        known = accepted.select("rule", F.col("month").cast("date").alias("_m")).distinct()
        bad = bad.join(
            F.broadcast(known.withColumn("_reported", F.lit(True))),
            (bad["rule"] == known["rule"]) & bad["month"].eqNullSafe(known["_m"]),
            "left",
        ).drop(known["rule"], "_m")
        severity = F.when(F.col("under_min_only") & F.col("_reported").isNotNull(), F.lit(WARNING)).otherwise(
            F.lit(ERROR)
        )
    return [
        _violations(
            bad,
            F.col("rule"),
            "capacity",
            F.col("month"),
            F.concat(
                F.col("measure"),
                F.lit(" "),
                F.format_number(F.col("usage"), 6),
                F.lit(" outside ["),
                F.coalesce(F.format_number(F.col("bound_min"), 6), F.lit("-")),
                F.lit(", "),
                F.coalesce(F.format_number(F.col("bound_max"), 6), F.lit("-")),
                F.lit("]"),
                F.when(
                    severity == WARNING, F.lit(": a min the plan stage reported it could not meet")
                ).otherwise(F.lit("")),
            ),
            severity,
        )
    ]


# -------------------------------------------------------------------------- entry
def min_rule_population(inputs: ValidationInputs) -> DataFrame:
    """Customers min rules apply to: at least one eligible candidate, not quarantined."""
    population = inputs.eligibility.filter(F.col("eligible")).select("customer_id").distinct()
    if inputs.quarantine is not None:
        population = population.join(inputs.quarantine.select("customer_id"), "customer_id", "left_anti")
    return population


def validate_plan(spark: SparkSession, config: AppConfig, inputs: ValidationInputs, run_id: str) -> DataFrame:
    """Every violation of the plan (empty when the plan is legal), with ``run_id``."""
    plan = inputs.plan
    if "contact" not in plan.columns:
        plan = plan.withColumn("contact", F.lit(None).cast("string"))
    frames = check_rows(plan, inputs.customers, inputs.eligibility, inputs.best_contacts, config)
    history = inputs.contact_history
    events = contact_events(plan, history, config)
    if any(r.type == "min_offers" for r in config.policy.rules):
        population = min_rule_population(inputs)
        # Min rules count history of customers that have no planned contact too.
        past = (
            history.select(
                "customer_id", month_index(F.col("contact_date"), config).alias("m"), "campaign", "channel"
            )
            .filter(F.col("m") < 0)
            .join(population, "customer_id", "left_semi")
            .join(plan.select("customer_id").distinct(), "customer_id", "left_anti")
            .groupBy("customer_id", "m", "campaign", "channel")
            .agg(F.count(F.lit(1)).alias("n"))
            .select("*", F.lit(False).alias("planned"))
        )
        events = events.unionByName(past)
    else:
        population = plan.select("customer_id").limit(0)
    frames += check_policy(spark, events, population, config)
    attributed = plan_attributes(plan, inputs.eligibility, inputs.customers, config)
    accepted = None if config.validation.strict_min_capacity else inputs.reported_shortfalls
    frames += check_capacity(capacity_usage(spark, attributed, config), accepted)
    if config.triggers.events:
        from contact_spark.validation.triggers import check_triggers

        applied = inputs.applied_events
        if applied is None:
            applied = spark.createDataFrame([], "customer_id string, event_type string, event_time timestamp")
        frames += check_triggers(spark, config, plan, applied)
    out = _union(spark, frames)
    return out.select(F.lit(run_id).alias("run_id"), *VIOLATION_COLUMNS[1:])


def months_of(config: AppConfig) -> list[dt.date]:
    return config.run.months()
