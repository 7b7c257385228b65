"""Ownership of shared contacts, ranks per use, best contacts, customer contactability.

Plain ``DataFrame -> DataFrame`` transformations. Every window has a total order
(ties end on a unique key), so the same input always gives the same output, and
every window is partitioned by a customer, a household or a contact value: no step
gathers the whole base in one partition, and nothing is collected to the driver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from contact_spark.config.contacts import ContactSettings
from contact_spark.contacts import reasons as R


def assign_owner(df: DataFrame, settings: ContactSettings) -> DataFrame:
    """``owner`` and the final ``score``.

    Among the customers holding the same value, the owner is the one with the highest
    ``base_score``; ties go to the earliest ``created_at`` (the contact has been on that
    customer longest, unknown dates last), then the smallest ``customer_id``. With
    ``shared.household_shares`` the owner's household members own it too. A non-owner
    keeps the contact, demoted: ``score = round(base_score × non_owner_factor)``.
    """
    shared = settings.shared
    w = Window.partitionBy("contact_type", "value").orderBy(
        F.col("base_score").desc(), F.col("created_at").asc_nulls_last(), F.col("customer_id").asc()
    )
    top = w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    owner = F.col("customer_id") == F.first("customer_id").over(top)
    if shared.household_shares:
        owner_household = F.first("household_id").over(top)
        owner = owner | (F.col("household_id").isNotNull() & (F.col("household_id") == owner_household))
    demoted = F.round(F.col("base_score") * F.lit(shared.non_owner_factor), 0).cast("int")
    return df.withColumn("owner", owner).withColumn(
        "score", F.when(F.col("owner"), F.col("base_score")).otherwise(demoted)
    )


def usable(settings: ContactSettings) -> dict[str, Column]:
    """Per contact kind, the condition for a clean contact to serve it."""
    u = settings.usage
    owned = F.col("owner") | F.lit(settings.shared.use_non_owner)
    phone = (F.col("contact_type") == "phone") & F.col("valid") & owned
    email = (
        (F.col("contact_type") == "email")
        & F.col("valid")
        & owned
        & F.col("email_domain_class").isin(*u.email_domain_classes)
    )
    if not u.role_emails:
        email = email & ~F.col("email_role")
    return {
        "email": email,
        "mobile": phone & F.col("phone_type").isin(*u.mobile_types),
        "phone": phone & F.col("phone_type").isin(*u.phone_types),
    }


def rank_contacts(df: DataFrame, settings: ContactSettings) -> DataFrame:
    """``rank`` among the customer's contacts of the same type, and ``rank_<kind>`` per use.

    ``rank`` orders every clean contact (usable or not) by score, then ``contact_id``.
    ``rank_email`` / ``rank_mobile`` / ``rank_phone`` order only the contacts usable for
    that kind (owners first when non-owners may be used); null when not usable.
    """
    by_type = Window.partitionBy("customer_id", "contact_type").orderBy(
        F.col("score").desc(), F.col("contact_id").asc()
    )
    # Every window below is partitioned by the customer and something else: rows hashed by
    # customer alone satisfy all four, so the table is shuffled once instead of per window.
    out = df.repartition("customer_id").withColumn("rank", F.row_number().over(by_type))
    for kind, condition in usable(settings).items():
        flag = f"_usable_{kind}"
        w = Window.partitionBy("customer_id", flag).orderBy(
            F.col("owner").desc(), F.col("score").desc(), F.col("contact_id").asc()
        )
        out = (
            out.withColumn(flag, F.coalesce(condition, F.lit(False)))
            .withColumn(f"rank_{kind}", F.when(F.col(flag), F.row_number().over(w)))
            .drop(flag)
        )
    return out


def reason_codes(df: DataFrame, settings: ContactSettings) -> DataFrame:
    """``reason_codes``: the flags explaining a clean contact's score or use (fixed order)."""
    u = settings.usage
    is_phone = F.col("contact_type") == "phone"
    is_email = F.col("contact_type") == "email"
    flags = [
        (R.PHONE_NOT_VALID, is_phone & ~F.col("valid")),
        (
            R.PHONE_TYPE_NOT_USABLE,
            is_phone
            & F.col("valid")
            & ~F.col("phone_type").isin(*sorted(set(u.mobile_types) | set(u.phone_types))),
        ),
        (R.EMAIL_ROLE_ACCOUNT, is_email & F.col("email_role")),
        (R.EMAIL_DISPOSABLE, is_email & (F.col("email_domain_class") == "disposable")),
        (R.EMAIL_DOMAIN_TYPO, is_email & (F.col("email_domain_class") == "typo")),
        (R.MERGED_DUPLICATES, F.col("n_records") > 1),
        (R.SHARED_CONTACT, F.col("customers_sharing") > 1),
        (R.NOT_OWNER, ~F.col("owner")),
        (R.LAST_CONTACT_BOUNCED, F.col("last_bounced")),
    ]
    codes = F.array(*[F.when(F.coalesce(cond, F.lit(False)), F.lit(code)) for code, cond in flags])
    return df.withColumn("reason_codes", F.filter(codes, lambda c: c.isNotNull()))


def best_contacts(clean: DataFrame, channel_kinds: Mapping[str, str]) -> DataFrame:
    """One row per customer × channel that has a usable contact: the contact of rank 1."""
    parts = [
        clean.filter(F.col(f"rank_{kind}") == 1).select(
            "customer_id",
            F.lit(channel).alias("channel"),
            "contact_id",
            "value",
            F.lit(kind).alias("contact_kind"),
            "score",
        )
        for channel, kind in sorted(channel_kinds.items())
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def customer_contactability(
    clean: DataFrame, customers: DataFrame, settings: ContactSettings, kinds: Sequence[str]
) -> DataFrame:
    """``score`` 0–1000 per customer: the chance to reach them through the kinds in use.

    For each kind k: R_k = 1 − Π (1 − score/1000 × decay^(rank_k − 1)) over the contacts
    usable for k; score = round(1000 × Σ w_k·R_k / Σ w_k). Customers without a usable
    contact score 0. The product runs over contacts sorted by rank: same order every run.
    """
    c = settings.contactability
    weights = {k: c.kind_weights.get(k, 0.0) for k in sorted(set(kinds))}
    total = sum(weights.values())
    any_use = (
        F.col("rank_email").isNotNull() | F.col("rank_mobile").isNotNull() | F.col("rank_phone").isNotNull()
    )
    aggs = [F.count(F.when(any_use, 1)).cast("int").alias("usable_contacts")]
    for k in weights:
        term = F.col("score") / F.lit(1000.0) * F.pow(F.lit(c.rank_decay), F.col(f"rank_{k}") - 1)
        items = F.array_sort(
            F.collect_list(
                F.when(
                    F.col(f"rank_{k}").isNotNull(), F.struct(F.col(f"rank_{k}").alias("r"), term.alias("t"))
                )
            )
        )
        miss = F.aggregate(items, F.lit(1.0), lambda acc, x: acc * (F.lit(1.0) - x["t"]))
        aggs.append((F.lit(1.0) - miss).alias(f"_reach_{k}"))
    per_customer = clean.groupBy("customer_id").agg(*aggs)
    if total > 0:
        mix = sum(
            (F.lit(w) * F.coalesce(F.col(f"_reach_{k}"), F.lit(0.0)) for k, w in weights.items()), F.lit(0.0)
        )
        value = F.round(F.lit(1000.0) * mix / F.lit(total), 0).cast("int")
    else:
        value = F.lit(0)
    base = customers.groupBy("customer_id").agg(F.min("household_id").alias("household_id"))
    return base.join(per_customer, on="customer_id", how="left").select(
        "customer_id",
        "household_id",
        F.coalesce(value, F.lit(0)).alias("score"),
        F.coalesce(F.col("usable_contacts"), F.lit(0)).alias("usable_contacts"),
    )


def rank_base(df: DataFrame) -> DataFrame:
    """``rank`` of every customer in the base by score: 1 + customers with a higher score.

    Equal scores share a rank (725, 615, 615, 33 → 1, 2, 2, 4). Scores are integers
    0–1000, so the ranks come from a histogram of at most 1001 rows joined back, not
    from a window over the whole base (which would put it in one partition).
    """
    hist = df.groupBy("score").agg(F.count(F.lit(1)).alias("_n"))
    above = Window.orderBy(F.col("score").desc()).rowsBetween(Window.unboundedPreceding, -1)
    ranks = hist.select(
        "score", (F.coalesce(F.sum("_n").over(above), F.lit(0)) + 1).cast("long").alias("rank")
    )
    return df.join(F.broadcast(ranks), on="score", how="left")


def best_in_group(df: DataFrame, by: str | list[str], name: str) -> DataFrame:
    """Flag ``name``: the most contactable customer of each group (a segment, a region, a
    campaign audience…); ties go to the smallest ``customer_id``. Rows whose group key is
    null form no group: each is the best of its own."""
    keys = [by] if isinstance(by, str) else list(by)
    no_group = F.lit(False)
    for column in keys:
        no_group = no_group | F.col(column).isNull()
    # A null key gets the customer's own id, so nulls never pile up in one window partition.
    key = F.when(no_group, F.concat(F.lit("C:"), F.col("customer_id"))).otherwise(
        F.concat(F.lit("G:"), F.to_json(F.struct(*[F.col(k) for k in keys])))
    )
    w = Window.partitionBy(key).orderBy(F.col("score").desc(), F.col("customer_id").asc())
    return df.withColumn(name, F.row_number().over(w) == 1)


def household_best(df: DataFrame) -> DataFrame:
    """``household_best``: the most contactable member of each household (ties: the
    smallest customer_id). A customer without a household is its own household."""
    return best_in_group(df, "household_id", "household_best")
