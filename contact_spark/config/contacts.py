"""Configuration of contact cleaning and best-contact scoring (the ``contacts:`` section).

Only pydantic is imported here: ``contact_spark.config.models`` imports this module,
and importing anything under ``contact_spark.config`` from here would run the config
package's ``__init__`` (loader → models → this module) and fail as a circular import
when a Spark worker imports this module first. The score formula these
weights feed is documented in ``docs/best_contact.md``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PHONE_TYPES = (
    "mobile",
    "fixed_line",
    "fixed_line_or_mobile",
    "voip",
    "personal_number",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "uan",
    "pager",
    "voicemail",
    "unknown",
)
DOMAIN_CLASSES = ("public", "corporate", "disposable", "typo")
OUTCOMES = ("converted", "responded", "no_response", "not_reached", "bounced")
ContactKind = Literal["email", "mobile", "phone"]

DEFAULT_PUBLIC_DOMAINS = [
    "gmail.com",
    "googlemail.com",
    "libero.it",
    "outlook.com",
    "outlook.it",
    "hotmail.com",
    "hotmail.it",
    "live.com",
    "live.it",
    "msn.com",
    "yahoo.com",
    "yahoo.it",
    "icloud.com",
    "me.com",
    "tiscali.it",
    "virgilio.it",
    "alice.it",
    "tim.it",
    "fastwebnet.it",
    "email.it",
    "inwind.it",
    "aol.com",
    "gmx.com",
    "gmx.net",
    "mail.com",
    "protonmail.com",
    "proton.me",
    "yandex.ru",
    "mail.ru",
]
DEFAULT_ROLE_LOCAL_PARTS = [
    "info",
    "admin",
    "administrator",
    "amministrazione",
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "postmaster",
    "webmaster",
    "hostmaster",
    "abuse",
    "support",
    "help",
    "sales",
    "marketing",
    "billing",
    "contact",
    "contatti",
    "office",
    "ufficio",
    "segreteria",
    "reception",
    "commerciale",
    "ordini",
    "hr",
    "privacy",
    "staff",
    "team",
]


class StrictModel(BaseModel):
    """Same as ``contact_spark.config.base.StrictModel``: unknown keys rejected, immutable, finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SourceSettings(StrictModel):
    """How much each source system is trusted."""

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "CRM": 1.0,
            "CONTRACT": 1.0,
            "CALL_CENTER": 0.8,
            "WEB": 0.6,
            "THIRD_PARTY": 0.3,
        },
        description="Trust of each source system (upper-case name as in contacts.source), >= 0.",
    )
    default_weight: float = Field(0.2, ge=0, description="Weight of a source not listed (or null).")
    saturation: float = Field(
        1.5, gt=0, description="Summed source weight at which the sources signal reaches 1."
    )

    @field_validator("weights")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, w in value.items() if w < 0]
        if bad:
            raise ValueError(f"source weights must be >= 0 (check {', '.join(sorted(bad))})")
        return {k.strip().upper(): w for k, w in value.items()}


class SignalWeights(StrictModel):
    """Points of each signal in the 0–1000 score; normalised by the sum of those that apply."""

    sources: float = Field(200, ge=0)
    type: float = Field(200, ge=0)
    uniqueness: float = Field(100, ge=0)
    history: float = Field(250, ge=0)
    age: float = Field(50, ge=0)
    confirmed: float = Field(100, ge=0)
    last_contact: float = Field(100, ge=0)
    domain: float = Field(100, ge=0, description="E-mails only.")

    @model_validator(mode="after")
    def _some_weight(self) -> SignalWeights:
        if sum(self.model_dump().values()) - self.domain <= 0:
            raise ValueError("at least one phone signal weight must be > 0")
        return self


class ScoreSettings(StrictModel):
    """Signal weights, per-value signal levels, time scales and multiplicative factors."""

    weights: SignalWeights = SignalWeights()
    phone_types: dict[str, float] = Field(
        default_factory=lambda: {
            "mobile": 1.0,
            "fixed_line_or_mobile": 0.8,
            "fixed_line": 0.6,
            "voip": 0.4,
            "personal_number": 0.4,
            "toll_free": 0.1,
            "shared_cost": 0.1,
            "uan": 0.1,
            "premium_rate": 0.0,
            "pager": 0.0,
            "voicemail": 0.0,
            "unknown": 0.0,
        },
        description="Type signal of a phone by number type (missing types count 0).",
    )
    email_personal: float = Field(1.0, ge=0, le=1, description="Type signal of a personal address.")
    email_role: float = Field(0.3, ge=0, le=1, description="Type signal of a role address (info@…).")
    domain_classes: dict[str, float] = Field(
        default_factory=lambda: {"public": 1.0, "corporate": 0.6, "disposable": 0.0, "typo": 0.0},
        description="Domain signal by domain class.",
    )
    domain_factors: dict[str, float] = Field(
        default_factory=lambda: {"public": 1.0, "corporate": 1.0, "disposable": 0.2, "typo": 0.2},
        description="Multiplier of the whole score by domain class.",
    )
    outcome_values: dict[str, float] = Field(
        default_factory=lambda: {
            "converted": 1.0,
            "responded": 1.0,
            "no_response": 0.6,
            "not_reached": 0.1,
            "bounced": 0.0,
        },
        description="Value of one past contact by outcome, in [0, 1].",
    )
    history_prior: float = Field(0.5, ge=0, le=1, description="History signal of a never-used contact.")
    history_prior_strength: float = Field(2.0, gt=0, description="Pseudo-contacts at the prior value.")
    age_saturation_days: int = Field(730, gt=0, description="Age on the customer at which age signal is 1.")
    confirmed_half_life_days: int = Field(365, gt=0)
    last_contact_half_life_days: int = Field(180, gt=0)
    invalid_factor: float = Field(0.1, ge=0, le=1, description="Multiplier for a number invalid in its plan.")
    last_bounced_factor: float = Field(
        0.5, ge=0, le=1, description="Multiplier when the latest past contact bounced."
    )

    @field_validator("phone_types")
    @classmethod
    def _phone_types(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(PHONE_TYPES))
        if unknown:
            raise ValueError(f"unknown phone types {unknown}; valid: {', '.join(PHONE_TYPES)}")
        return _unit_values(value)

    @field_validator("domain_classes", "domain_factors")
    @classmethod
    def _domain_classes(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(DOMAIN_CLASSES):
            raise ValueError(f"give exactly the domain classes {', '.join(DOMAIN_CLASSES)}")
        return _unit_values(value)

    @field_validator("outcome_values")
    @classmethod
    def _outcomes(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(OUTCOMES):
            raise ValueError(f"give exactly the outcomes {', '.join(OUTCOMES)}")
        return _unit_values(value)

    @model_validator(mode="after")
    def _bounce_is_worst(self) -> ScoreSettings:
        # Monotonicity: a bounce must never raise the history signal, whatever came before.
        floor = min(self.history_prior, *(v for k, v in self.outcome_values.items() if k != "bounced"))
        if self.outcome_values["bounced"] > floor:
            raise ValueError(
                "outcome_values.bounced must be <= every other outcome value and history_prior, "
                "or a bounce could raise a contact's score"
            )
        return self


def _unit_values(value: dict[str, float]) -> dict[str, float]:
    bad = [k for k, v in value.items() if not 0 <= v <= 1]
    if bad:
        raise ValueError(f"values must be in [0, 1] (check {', '.join(sorted(bad))})")
    return value


class EmailSettings(StrictModel):
    """How addresses are classified."""

    role_local_parts: list[str] = Field(default_factory=lambda: list(DEFAULT_ROLE_LOCAL_PARTS))
    public_domains: list[str] = Field(default_factory=lambda: list(DEFAULT_PUBLIC_DOMAINS))
    extra_disposable_domains: list[str] = Field(
        default_factory=list, description="Added to the disposable-email-domains blocklist."
    )
    lowercase_local_part: bool = Field(
        True,
        description="Lower-case the local part too: RFC 5321 allows case-sensitive mailboxes, "
        "but no large provider uses them, and MARIO@ and mario@ must merge.",
    )
    allow_smtputf8: bool = Field(
        False, description="Accept non-ASCII local parts (most senders cannot deliver them)."
    )
    detect_typos: bool = Field(
        True, description="Class 'typo' for a domain one edit away from a public domain (gmial.com)."
    )

    @field_validator("role_local_parts", "public_domains", "extra_disposable_domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return sorted({v.strip().lower() for v in value if v.strip()})


class UsageSettings(StrictModel):
    """Which cleaned contacts may serve each contact kind (email, mobile, phone)."""

    mobile_types: list[str] = Field(
        default_factory=lambda: ["mobile", "fixed_line_or_mobile"],
        description="Number types that can receive an SMS.",
    )
    phone_types: list[str] = Field(
        default_factory=lambda: ["mobile", "fixed_line", "fixed_line_or_mobile", "voip", "personal_number"],
        description="Number types a teleselling call can use (toll-free and premium are agents/businesses).",
    )
    email_domain_classes: list[str] = Field(
        default_factory=lambda: ["public", "corporate"], description="Domain classes a DEM can use."
    )
    role_emails: bool = Field(True, description="Role addresses (info@…) may be used (scored lower).")

    @field_validator("mobile_types", "phone_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(PHONE_TYPES))
        if unknown:
            raise ValueError(f"unknown phone types {unknown}; valid: {', '.join(PHONE_TYPES)}")
        return value

    @field_validator("email_domain_classes")
    @classmethod
    def _classes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(DOMAIN_CLASSES))
        if unknown:
            raise ValueError(f"unknown domain classes {unknown}; valid: {', '.join(DOMAIN_CLASSES)}")
        return value


class SharedSettings(StrictModel):
    """A contact found on several customers: who owns it, what the others keep."""

    non_owner_factor: float = Field(
        0.5, ge=0, le=1, description="Multiplier of a non-owner's score (the demotion)."
    )
    use_non_owner: bool = Field(False, description="Let non-owners still use the contact (after owners).")
    household_shares: bool = Field(
        True, description="Members of the owner's household own it too (a family landline)."
    )


class ContactabilitySettings(StrictModel):
    """Customer contactability from its usable contacts."""

    kind_weights: dict[str, float] = Field(
        default_factory=lambda: {"email": 1.0, "mobile": 1.0, "phone": 1.0},
        description="Weight of each contact kind used by a configured channel.",
    )
    rank_decay: float = Field(
        0.5, ge=0, le=1, description="A contact of rank r counts decay^(r-1) of its score."
    )

    @field_validator("kind_weights")
    @classmethod
    def _kinds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - {"email", "mobile", "phone"})
        if unknown:
            raise ValueError(f"unknown contact kinds {unknown}; valid: email, mobile, phone")
        if any(w < 0 for w in value.values()):
            raise ValueError("kind weights must be >= 0")
        return value


class HouseholdSettings(StrictModel):
    """Households: the most contactable member, and whether the others are held back."""

    suppress_other_members: bool = Field(
        False,
        description="Contact only the household_best member of a household for the same campaign "
        "in the same month (applied by eligibility/solver).",
    )


class ContactSettings(StrictModel):
    """The ``contacts:`` section: cleaning, scoring, ranking, ownership, households."""

    default_region: str = Field(
        "IT", min_length=2, max_length=2, description="Region of numbers typed without +country code."
    )
    sources: SourceSettings = SourceSettings()
    score: ScoreSettings = ScoreSettings()
    email: EmailSettings = EmailSettings()
    usage: UsageSettings = UsageSettings()
    shared: SharedSettings = SharedSettings()
    contactability: ContactabilitySettings = ContactabilitySettings()
    household: HouseholdSettings = HouseholdSettings()

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        import phonenumbers

        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"'{value}' is not a region known to phonenumbers (e.g. IT, DE, GB, US)")
        return region
