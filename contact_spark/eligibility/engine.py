"""Eligibility per customer × campaign × channel, with every reason (not only the first).

Fail-closed everywhere: a null consent, opt-out, churn or outbound flag counts against
contact; an include/exclude predicate that evaluates to NULL excludes. Include rules can
only remove candidates, never add one back, so nothing in the configuration can make a
customer without consent eligible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from contact_spark.config.eligibility import EligibilityRule
from contact_spark.config.models import AppConfig
from contact_spark.config.predicates import predicate_columns
from contact_spark.errors import ContactSparkError
from contact_spark.io.columns import case_when

# Reason codes in funnel order: the first reason of a candidate is the earliest here.
DUPLICATE_CUSTOMER_ID = "DUPLICATE_CUSTOMER_ID"
CHURN_RISK = "CHURN_RISK"
CHURN_RISK_UNKNOWN = "CHURN_RISK_UNKNOWN"
OUTBOUND = "OUTBOUND"
OUTBOUND_UNKNOWN = "OUTBOUND_UNKNOWN"
NO_PRIVACY_CONSENT = "NO_PRIVACY_CONSENT"
PRIVACY_CONSENT_UNKNOWN = "PRIVACY_CONSENT_UNKNOWN"
CHANNEL_OPT_OUT = "CHANNEL_OPT_OUT"
CHANNEL_OPT_OUT_UNKNOWN = "CHANNEL_OPT_OUT_UNKNOWN"
NO_TRIGGER_EVENT = "NO_TRIGGER_EVENT"
NO_PROPENSITY = "NO_PROPENSITY"
INVALID_PROPENSITY = "INVALID_PROPENSITY"
PROPENSITY_CONFLICT = "PROPENSITY_CONFLICT"
HOUSEHOLD_MEMBER_SUPPRESSED = "HOUSEHOLD_MEMBER_SUPPRESSED"
EXCLUDED_BY_RULE = "EXCLUDED_BY_RULE"
NOT_INCLUDED_BY_RULE = "NOT_INCLUDED_BY_RULE"
ELIGIBLE = "ELIGIBLE"


def no_valid_contact(kind: str) -> str:
    """Reason code for a channel whose contact kind (email, mobile, phone) is missing."""
    return f"NO_VALID_{kind.upper()}"


# Columns the candidate rows add to the customer's own columns; rule predicates may use them.
CANDIDATE_COLUMNS: dict[str, T.DataType] = {
    "campaign": T.StringType(),
    "channel": T.StringType(),
    "propensity": T.DoubleType(),
    "expected_value": T.DoubleType(),
    "contact_score": T.DoubleType(),
}

# The contact is referred to by its key, ``contact_id``: the raw phone or address stays in
# ``best_contacts`` and ``contacts_clean``, and only the plan and the exports join it back.
BEST_CONTACT_COLUMNS = ("customer_id", "channel", "contact_id", "score")


class EligibilityRuleError(ContactSparkError):
    """An include/exclude rule's predicate does not parse, names an unknown column or is not boolean."""

    def __init__(self, rule: str, problem: str) -> None:
        self.rule = rule
        super().__init__(f"eligibility rule '{rule}': {problem}")


@dataclass(frozen=True)
class EligibilityResult:
    """The eligibility table, its funnel, and input rows that could not be used."""

    eligibility: DataFrame
    funnel: DataFrame
    rejected: DataFrame


def _short_error(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def candidate_schema(customers_schema: T.StructType) -> T.StructType:
    """The columns a rule predicate can use: the customer's plus the candidate's."""
    fields = [f for f in customers_schema.fields if f.name not in CANDIDATE_COLUMNS]
    fields += [T.StructField(name, dtype, True) for name, dtype in CANDIDATE_COLUMNS.items()]
    return T.StructType(fields)


def check_rules(
    spark: SparkSession, rules: Sequence[EligibilityRule], customers_schema: T.StructType
) -> None:
    """Check every predicate's columns, then analyse it with Spark; no Spark job runs.

    The expression kinds were checked at config load (``contact_spark.config.predicates``);
    here the columns are, against the customers table's schema and the candidate columns.
    Raises :class:`EligibilityRuleError` naming the rule on an unknown column, a syntax
    error Spark finds or a non-boolean result.
    """
    schema = candidate_schema(customers_schema)
    known = {name.lower() for name in schema.names}
    empty = spark.createDataFrame([], schema)
    for rule in rules:
        if rule.where is None:
            continue
        unknown = [c for c in predicate_columns(rule.where) if c.lower() not in known]
        if unknown:
            raise EligibilityRuleError(
                rule.name,
                f"'where' names unknown column '{unknown[0]}' (columns: {', '.join(schema.names)})",
            )
        try:
            analysed = empty.select(F.expr(rule.where).alias("__predicate__"))
            dtype = analysed.schema["__predicate__"].dataType
        except PySparkException as exc:
            raise EligibilityRuleError(
                rule.name, f"'where' is not a valid predicate: {_short_error(exc)}"
            ) from None
        if not isinstance(dtype, T.BooleanType):
            raise EligibilityRuleError(
                rule.name, f"'where' must be true/false, but '{rule.where}' gives {dtype.simpleString()}"
            )
        try:
            # A filter's analysis also rejects aggregates and window functions.
            empty.filter(F.expr(rule.where)).schema  # noqa: B018
        except PySparkException as exc:
            raise EligibilityRuleError(
                rule.name, f"'where' is not a valid predicate: {_short_error(exc)}"
            ) from None


def _in_scope(rule: EligibilityRule) -> Column:
    scope = F.lit(True)
    # "any" needs no filter: every candidate is of a configured campaign and channel.
    if (campaigns := rule.restriction("campaigns")) is not None:
        scope = scope & F.col("campaign").isin(campaigns)
    if (channels := rule.restriction("channels")) is not None:
        scope = scope & F.col("channel").isin(channels)
    return scope


def _rule_reason(rule: EligibilityRule) -> Column:
    """The rule's reason code for a candidate, or NULL when the rule lets it through."""
    condition = F.lit(True)
    if rule.segments is not None:
        condition = condition & F.coalesce(F.col("segment").isin(list(rule.segments)), F.lit(False))
    if rule.where is not None:
        condition = condition & F.expr(rule.where)
    if rule.action == "exclude":
        # NULL (unknown) counts as matching: when in doubt, do not contact.
        hit = F.coalesce(condition, F.lit(True))
        code = f"{EXCLUDED_BY_RULE}:{rule.name}"
    else:
        hit = ~F.coalesce(condition, F.lit(False))
        code = f"{NOT_INCLUDED_BY_RULE}:{rule.name}"
    return F.when(_in_scope(rule) & hit, F.lit(code))


def _flag_reasons(column: Column, when_true: str, when_null: str) -> list[Column]:
    return [F.when(column, F.lit(when_true)), F.when(column.isNull(), F.lit(when_null))]


def _propensity_summary(propensities: DataFrame) -> DataFrame:
    return propensities.groupBy("customer_id", "campaign", "channel").agg(
        F.min(F.col("propensity").cast("double")).alias("_p_min"),
        F.max(F.col("propensity").cast("double")).alias("_p_max"),
        F.count(F.lit(1)).alias("_p_rows"),
        # A null propensity is as invalid as NaN (the contract says not nullable).
        F.sum(
            F.when(F.isnan(F.col("propensity").cast("double")) | F.col("propensity").isNull(), 1).otherwise(0)
        ).alias("_p_nan"),
    )


def compute_eligibility(
    spark: SparkSession,
    config: AppConfig,
    customers: DataFrame,
    best_contacts: DataFrame,
    propensities: DataFrame,
    run_id: str,
    household_best: DataFrame | None = None,
    opened: DataFrame | None = None,
) -> EligibilityResult:
    """Decide, for every customer × campaign × channel, eligibility and every reason against it.

    ``best_contacts`` has one row per customer and channel the customer can be reached
    on (columns ``customer_id, channel, contact_id, score``; any other column, such as the
    raw value, is not read: candidates name their contact by ``contact_id`` only). With
    ``contacts.household.suppress_other_members`` on, ``household_best``
    (``customer_id, household_best``) marks the one member of each household who may be
    contacted; the others get ``HOUSEHOLD_MEMBER_SUPPRESSED`` for every campaign, so two
    members are never contacted for the same campaign in the same month.
    ``opened`` (``customer_id, campaign, channel``) lists the trigger-only campaigns'
    cells a trigger event opens; every other cell of such a campaign gets ``NO_TRIGGER_EVENT``.
    """
    check_rules(spark, config.eligibility.rules, customers.schema)
    pairs = spark.createDataFrame(
        [
            (
                campaign,
                channel,
                cfg.success_value,
                # The cost the objective takes off (0 under objective: value), not the budget's.
                config.objective_cost(campaign, channel),
                config.channels[channel].contact_kind,
            )
            for campaign, cfg in config.campaigns.items()
            for channel in config.channels
        ],
        "campaign string, channel string, _value double, _cost double, _kind string",
    )
    valid_customers = customers.filter(F.col("customer_id").isNotNull() & (F.trim("customer_id") != ""))
    duplicates = valid_customers.groupBy("customer_id").agg(F.count(F.lit(1)).alias("_copies"))
    # One row per customer_id; a duplicated id is kept once, flagged and never contacted.
    one_per_id = valid_customers.dropDuplicates(["customer_id"]).join(duplicates, "customer_id")

    # Exactly one contact per customer and channel: the best score, ties broken by a stable hash of the id.
    contacts = (
        best_contacts.groupBy("customer_id", "channel")
        .agg(
            F.max_by(
                F.struct("contact_id", F.col("score").cast("double").alias("contact_score")),
                F.struct(F.col("score").cast("double"), F.lit(0) - F.xxhash64("contact_id")),
            ).alias("_best")
        )
        .select("customer_id", "channel", "_best.contact_id", "_best.contact_score")
    )
    suppress = config.contacts.household.suppress_other_members
    if suppress:
        if household_best is None:
            raise ContactSparkError(
                "contacts.household.suppress_other_members is on but no contactability table was given"
            )
        one_per_id = one_per_id.join(
            household_best.select("customer_id", F.col("household_best").alias("_household_best")),
            "customer_id",
            "left",
        )
    else:
        one_per_id = one_per_id.withColumn("_household_best", F.lit(True))
    if opened is None:
        opened = spark.createDataFrame([], "customer_id string, campaign string, channel string")
    opened = opened.select("customer_id", "campaign", "channel", F.lit(True).alias("_opened")).dropDuplicates(
        ["customer_id", "campaign", "channel"]
    )
    candidates = (
        one_per_id.crossJoin(F.broadcast(pairs))
        .join(opened, ["customer_id", "campaign", "channel"], "left")
        .join(contacts, ["customer_id", "channel"], "left")
        .join(_propensity_summary(propensities), ["customer_id", "campaign", "channel"], "left")
    )
    p_ok = (
        (F.col("_p_rows") > 0)
        & (F.col("_p_nan") == 0)
        & (F.col("_p_min") == F.col("_p_max"))
        & F.col("_p_min").between(0.0, 1.0)
    )
    candidates = candidates.withColumn(
        "propensity", F.when(F.col("_p_rows") > 0, F.col("_p_min"))
    ).withColumn("expected_value", F.col("propensity") * F.col("_value") - F.col("_cost"))

    optout = F.col("_optout")
    channel_optout = case_when(
        (F.col("channel") == channel, F.col(f"optout_{channel.lower()}")) for channel in config.channels
    )
    candidates = candidates.withColumn("_optout", channel_optout)

    reasons = [
        F.when(F.col("_copies") > 1, F.lit(DUPLICATE_CUSTOMER_ID)),
        *_flag_reasons(F.col("churn_risk"), CHURN_RISK, CHURN_RISK_UNKNOWN),
        *_flag_reasons(F.col("outbound"), OUTBOUND, OUTBOUND_UNKNOWN),
        F.when(F.col("privacy_consent") == F.lit(False), F.lit(NO_PRIVACY_CONSENT)),
        F.when(F.col("privacy_consent").isNull(), F.lit(PRIVACY_CONSENT_UNKNOWN)),
        *_flag_reasons(optout, CHANNEL_OPT_OUT, CHANNEL_OPT_OUT_UNKNOWN),
        F.when(F.col("contact_id").isNull(), F.concat(F.lit("NO_VALID_"), F.upper(F.col("_kind")))),
        # A trigger-only campaign waits for its event (the trigger run lifts this reason).
        F.when(
            F.col("campaign").isin(*config.trigger_campaigns) & F.col("_opened").isNull(),
            F.lit(NO_TRIGGER_EVENT),
        ),
        F.when(F.col("_p_rows").isNull(), F.lit(NO_PROPENSITY)),
        F.when(
            (F.col("_p_rows") > 0) & (F.col("_p_min") != F.col("_p_max")) & (F.col("_p_nan") == 0),
            F.lit(PROPENSITY_CONFLICT),
        ),
        F.when(
            (F.col("_p_rows") > 0)
            & (
                (F.col("_p_nan") > 0)
                | ~F.col("_p_min").between(0.0, 1.0)
                | ~F.col("_p_max").between(0.0, 1.0)
            ),
            F.lit(INVALID_PROPENSITY),
        ),
        # Fail-closed: a member missing from the contactability table is not the best one.
        F.when(~F.coalesce(F.col("_household_best"), F.lit(False)), F.lit(HOUSEHOLD_MEMBER_SUPPRESSED)),
        *[_rule_reason(rule) for rule in config.eligibility.rules],
    ]
    reason_array = F.filter(F.array(*reasons), lambda r: r.isNotNull())
    with_reasons = candidates.withColumn("reasons", reason_array)
    # Consent is checked again on its own so no reason bookkeeping slip can open the gate.
    # Fail-closed: any unknown (null) part makes the candidate not eligible, never NULL.
    eligible = F.coalesce(
        (F.size("reasons") == 0) & (F.col("privacy_consent") == F.lit(True)) & p_ok, F.lit(False)
    )
    eligibility = with_reasons.select(
        F.lit(run_id).alias("run_id"),
        "customer_id",
        "household_id",
        "segment",
        "campaign",
        "channel",
        eligible.alias("eligible"),
        "reasons",
        "contact_id",
        "contact_score",
        "propensity",
        F.when(p_ok, F.col("expected_value")).alias("expected_value"),
    )
    return EligibilityResult(
        eligibility=eligibility,
        funnel=eligibility_funnel(eligibility, run_id),
        rejected=_rejected_inputs(customers, propensities, config, run_id),
    )


def eligibility_funnel(eligibility: DataFrame, run_id: str) -> DataFrame:
    """Counts per campaign, channel and reason: with the reason at all, and as first reason."""
    exploded = eligibility.select(
        "campaign",
        "channel",
        F.explode(F.when(F.col("eligible"), F.array(F.lit(ELIGIBLE))).otherwise(F.col("reasons"))).alias(
            "reason"
        ),
    )
    any_reason = exploded.groupBy("campaign", "channel", "reason").agg(F.count(F.lit(1)).alias("candidates"))
    first = (
        eligibility.select(
            "campaign",
            "channel",
            F.when(F.col("eligible"), F.lit(ELIGIBLE)).otherwise(F.element_at("reasons", 1)).alias("reason"),
        )
        .groupBy("campaign", "channel", "reason")
        .agg(F.count(F.lit(1)).alias("first_reason_candidates"))
    )
    return (
        any_reason.join(first, ["campaign", "channel", "reason"], "full")
        .fillna(0, subset=["candidates", "first_reason_candidates"])
        .select(
            F.lit(run_id).alias("run_id"),
            "campaign",
            "channel",
            "reason",
            F.col("candidates").cast("long").alias("candidates"),
            F.col("first_reason_candidates").cast("long").alias("first_reason_candidates"),
        )
    )


REJECTED_SCHEMA = "run_id string, table_name string, row_ref string, reason_code string, detail string"


def _rejected_inputs(
    customers: DataFrame, propensities: DataFrame, config: AppConfig, run_id: str
) -> DataFrame:
    """Input rows eligibility cannot use, each with a reason code (nothing dropped silently)."""
    row_hash = F.sha2(F.to_json(F.struct("*")), 256).substr(1, 16)
    blank_customers = customers.filter(F.col("customer_id").isNull() | (F.trim("customer_id") == "")).select(
        F.lit(run_id).alias("run_id"),
        F.lit("customers").alias("table_name"),
        F.concat(F.lit("row:"), row_hash).alias("row_ref"),
        F.lit("NULL_CUSTOMER_ID").alias("reason_code"),
        F.lit("customer_id is null or blank").alias("detail"),
    )
    known = customers.select("customer_id").distinct().withColumn("_known", F.lit(True))
    flagged = propensities.join(known, "customer_id", "left").select(
        "customer_id",
        "campaign",
        "channel",
        F.when(
            ~F.col("campaign").isin(config.campaign_names) | F.col("campaign").isNull(),
            F.lit("UNKNOWN_CAMPAIGN"),
        )
        .when(
            ~F.col("channel").isin(config.channel_names) | F.col("channel").isNull(), F.lit("UNKNOWN_CHANNEL")
        )
        .when(F.col("_known").isNull(), F.lit("UNKNOWN_CUSTOMER"))
        .alias("reason_code"),
    )
    bad_propensities = flagged.filter(F.col("reason_code").isNotNull()).select(
        F.lit(run_id).alias("run_id"),
        F.lit("propensities").alias("table_name"),
        F.concat_ws(
            "|",
            F.coalesce("customer_id", F.lit("<null>")),
            F.coalesce("campaign", F.lit("<null>")),
            F.coalesce("channel", F.lit("<null>")),
        ).alias("row_ref"),
        "reason_code",
        F.concat(F.lit("campaign/channel/customer not in config or customers: "), F.col("reason_code")).alias(
            "detail"
        ),
    )
    return blank_customers.unionByName(bad_propensities)
