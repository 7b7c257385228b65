"""Believable offers for any catalogue: per-family and per-offer rates, channel lifts,
customer features and affinities, from the config and the seed alone (used by the
generator for contact history and propensities; documented in docs/demo_data.md)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from statistics import NormalDist

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from contact_spark.config.models import AppConfig
from contact_spark.data.hashing import uniform

# ----------------------------------------------------------------------------- offers
# The seed's two campaigns keep the figures of docs/demo_data.md, so the default demo is
# unchanged; any other campaign gets a profile from its family (see FAMILY_PROFILES).
HISTORY_CONTACT_RATE = 0.30
# Conversion rate of a reached customer with average features, per campaign and channel lift.
HISTORY_BASE_RATE = {"CROSS_SELLING": 0.05, "SOLUTION": 0.02}
HISTORY_CHANNEL_LIFT = {"DEM": 0.6, "SMS": 0.8, "TLS": 2.5}
# Propensity base per campaign and channel lift (the propensities table).
PROPENSITY_BASE = {"CROSS_SELLING": 0.045, "SOLUTION": 0.012}
PROPENSITY_CHANNEL_LIFT = {"DEM": 0.35, "SMS": 0.5, "TLS": 3.0}
# Channels not named above take the lift of their contact kind.
HISTORY_KIND_LIFT = {"email": 0.6, "mobile": 0.8, "phone": 2.5}
PROPENSITY_KIND_LIFT = {"email": 0.35, "mobile": 0.5, "phone": 3.0}
# Catalogue history: a customer's monthly contact probability is drawn in this range (some
# customers are contacted most months, some rarely), and past targeting followed the
# customer's family affinity with this strength (CRM teams target likely buyers).
HISTORY_INTENSITY = (0.08, 0.68)
HISTORY_TARGETING = 2.0
# Spread (log scale) of offer base rates around their family's rate: most offers low, a few
# popular; and of the per-customer offer affinity around the family affinity.
OFFER_RATE_SIGMA = 0.8
OFFER_AFFINITY_SPREAD = 1.0
FEATURES = ("has_gas", "no_gas", "has_power", "no_power", "south", "business")
# Shares of the generated customers with each feature (generate_customers draws them
# independently): has_gas, has_power, region SUD, segment SMALL_BUSINESS or VIP.
FEATURE_SHARES = {"gas": 0.55, "power": 0.85, "south": 0.30, "business": 0.15}


@dataclass(frozen=True)
class FamilyProfile:
    """What the customers of a demo base do with one product family.

    ``rate`` is the propensity base (before channel lift) of a typical offer of the family
    for the average customer (offer_profiles spreads it over the offers and corrects it for
    the feature effects);
    ``phone_fit`` multiplies the phone channel's lift (high-ticket products sell by phone);
    ``features`` are logit effects of the known customer features (FEATURES).
    """

    rate: float
    phone_fit: float = 1.0
    features: tuple[tuple[str, float], ...] = ()


# An energy retailer's families (shared/seeds/000); any other family name gets a profile
# drawn from its name and the seed (see family_profile).
FAMILY_PROFILES: dict[str, FamilyProfile] = {
    # Commodities: cross-sold to customers who lack them (the seed's +0.9 without gas).
    "power": FamilyProfile(0.018, 0.9, (("no_power", 0.9), ("has_gas", 0.3))),
    "gas": FamilyProfile(0.020, 0.9, (("no_gas", 0.9), ("has_power", 0.3))),
    # Gas owners are likelier to replace a boiler; heat pumps and AC sell in the south.
    "boilers": FamilyProfile(0.008, 1.4, (("has_gas", 0.8), ("no_gas", -0.6))),
    "air_conditioning": FamilyProfile(0.009, 1.2, (("south", 0.6), ("has_power", 0.2))),
    "photovoltaics": FamilyProfile(0.005, 1.6, (("business", 0.6), ("has_power", 0.3))),
    "green_upgrades": FamilyProfile(0.010, 0.8, (("has_power", 0.4),)),
    "services": FamilyProfile(0.012, 0.6, (("has_gas", 0.3), ("has_power", 0.2))),
    "insurance": FamilyProfile(0.008, 1.1, (("business", -0.3),)),
}


@dataclass(frozen=True)
class OfferProfile:
    """Per-offer figures of the demo generator, derived from the config on the driver.

    ``family`` keys the customer's latent affinity (the campaign itself for an offer without
    a family); ``base`` and ``history_rate`` are the propensity base and the true conversion
    rate of a reached average customer, before the channel lift; ``weight`` is the offer's
    share of past contacts (before targeting); ``no_gas_lift``/``no_gas_logit`` are the
    seed's cross-selling effects; ``offer_spread`` scales the per-customer offer affinity.
    """

    campaign: str
    family: str
    base: float
    history_rate: float
    weight: float
    phone_fit: float = 1.0
    features: tuple[tuple[str, float], ...] = ()
    no_gas_lift: float = 1.0
    no_gas_logit: float = 0.0
    offer_spread: float = 0.0


def _unit(seed: int, *parts: str) -> float:
    """A deterministic uniform draw in (0, 1) from the seed and names (driver side, no Spark)."""
    digest = hashlib.blake2b("|".join([str(seed), *parts]).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2.0**64


def family_profile(seed: int, family: str) -> FamilyProfile:
    """The profile of a family: FAMILY_PROFILES, or one drawn from the name for others."""
    known = FAMILY_PROFILES.get(family.lower())
    if known is not None:
        return known
    # An unknown family (a bank's cards or loans): a rate between 0.5% and 4% (log-uniform),
    # a phone fit between 0.7 and 1.5 and no feature effects (its affinity stays latent).
    rate = 0.005 * 8.0 ** _unit(seed, "family_rate", family)
    return FamilyProfile(rate, 0.7 + 0.8 * _unit(seed, "family_phone", family))


def feature_mean(features: tuple[tuple[str, float], ...]) -> float:
    """Mean of exp(feature logit) over the generated customers (independent features).

    Offer rates are divided by it, so a family's rate is its rate for the average customer
    and the feature effects move customers around it rather than inflate every offer.
    """
    c = dict(features)
    gas, power = FEATURE_SHARES["gas"], FEATURE_SHARES["power"]
    south, business = FEATURE_SHARES["south"], FEATURE_SHARES["business"]
    return (
        (gas * math.exp(c.get("has_gas", 0.0)) + (1 - gas) * math.exp(c.get("no_gas", 0.0)))
        * (power * math.exp(c.get("has_power", 0.0)) + (1 - power) * math.exp(c.get("no_power", 0.0)))
        * (south * math.exp(c.get("south", 0.0)) + 1 - south)
        * (business * math.exp(c.get("business", 0.0)) + 1 - business)
    )


def offer_profiles(config: AppConfig) -> list[OfferProfile]:
    """One profile per configured campaign, in config order (pure, no Spark)."""
    seed = config.run.seed
    names = config.campaign_names
    catalogue = is_catalogue(config)
    profiles = []
    for i, (name, campaign) in enumerate(config.campaigns.items()):
        if campaign.family is None:
            # The seed's campaigns (and any other family-less campaign) as docs/demo_data.md says.
            weight = 0.7 if i == 0 else 0.3 / max(1, len(names) - 1)
            profiles.append(
                OfferProfile(
                    campaign=name,
                    family=name,
                    base=PROPENSITY_BASE.get(name, 0.02),
                    history_rate=HISTORY_BASE_RATE.get(name, 0.02),
                    weight=PROPENSITY_BASE.get(name, 0.02) if catalogue else weight,
                    no_gas_lift=1.4 if name == "CROSS_SELLING" else 1.0,
                    no_gas_logit=0.9 if name == "CROSS_SELLING" else 0.0,
                )
            )
            continue
        family = family_profile(seed, campaign.family)
        # Log-normal around the family rate, clipped to [1/4, 4]×: most offers near or below
        # the family rate, a few popular ones well above it.
        z = NormalDist().inv_cdf(_unit(seed, "offer_rate", name))
        spread = min(4.0, max(0.25, math.exp(OFFER_RATE_SIGMA * z)))
        rate = family.rate * spread / feature_mean(family.features)
        profiles.append(
            OfferProfile(
                campaign=name,
                family=campaign.family,
                base=rate,
                history_rate=1.2 * rate,
                weight=rate,
                phone_fit=family.phone_fit,
                features=family.features,
                offer_spread=OFFER_AFFINITY_SPREAD,
            )
        )
    return profiles


def is_catalogue(config: AppConfig) -> bool:
    """A catalogue config names offer families; the seed's config does not."""
    return any(c.family is not None for c in config.campaigns.values())


def _lift(channel: str, kind: str, by_name: dict[str, float], by_kind: dict[str, float]) -> float:
    return by_name.get(channel, by_kind[kind])


def offer_channel_frame(spark: SparkSession, config: AppConfig) -> DataFrame:
    """Small driver-built table: one row per campaign × channel with the generator's figures."""
    rows = []
    for o in offer_profiles(config):
        coef = dict(o.features)
        for ch, cfg in config.channels.items():
            fit = o.phone_fit if cfg.contact_kind == "phone" else 1.0
            base = o.base * _lift(ch, cfg.contact_kind, PROPENSITY_CHANNEL_LIFT, PROPENSITY_KIND_LIFT) * fit
            p0 = min(
                0.5,
                o.history_rate * _lift(ch, cfg.contact_kind, HISTORY_CHANNEL_LIFT, HISTORY_KIND_LIFT) * fit,
            )
            rows.append(
                (
                    o.campaign,
                    ch,
                    o.family,
                    base,
                    math.log(p0 / (1 - p0)),
                    o.no_gas_lift,
                    o.no_gas_logit,
                    o.offer_spread,
                    *[float(coef.get(f, 0.0)) for f in FEATURES],
                )
            )
    schema = (
        "campaign string, channel string, family string, base double, base_logit double, "
        "no_gas_lift double, no_gas_logit double, offer_spread double, "
        + ", ".join(f"f_{f} double" for f in FEATURES)
    )
    return spark.createDataFrame(rows, schema)


def feature_logit() -> Column:
    """Logit effect of the known customer features on the offer (columns f_*; 0 for the seed)."""
    has_gas = F.coalesce(F.col("has_gas"), F.lit(False))
    has_power = F.coalesce(F.col("has_power"), F.lit(False))
    conditions = {
        "has_gas": has_gas,
        "no_gas": ~has_gas,
        "has_power": has_power,
        "no_power": ~has_power,
        "south": F.coalesce(F.col("region") == "SUD", F.lit(False)),
        "business": F.col("segment").isin("SMALL_BUSINESS", "VIP"),
    }
    total: Column = F.lit(0.0)
    for name in FEATURES:
        total = total + F.when(conditions[name], F.col(f"f_{name}")).otherwise(0.0)
    return total


def offer_affinity(seed: int) -> Column:
    """Centred per-customer affinity to the offer itself, around the family's (0 for the seed)."""
    return F.col("offer_spread") * (
        uniform(seed, "offer_affinity", F.col("customer_id"), F.col("campaign")) - 0.5
    )
