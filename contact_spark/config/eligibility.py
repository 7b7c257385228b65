"""Configuration of eligibility: include/exclude rules in the spirit of Unica's
"Customers in" and "Interactions where" rules.

A rule is data, never code: ``where`` is a Spark SQL boolean expression (never passed to
Python's ``eval``). At config load it is parsed in pure Python and must use only the
expression kinds of :mod:`contact_spark.config.predicates` (columns, literals, comparisons,
boolean logic, arithmetic and a short list of functions); the eligibility stage then checks
its columns and its type against the customers table before any job runs.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from contact_spark.config.base import StrictModel
from contact_spark.config.predicates import PredicateError, check_predicate
from contact_spark.config.scope import ANY, Scoped

RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class EligibilityRule(StrictModel, Scoped):
    """Exclude (or, with ``action: include``, keep only) the candidates a condition selects.

    The condition is: the customer's segment is in ``segments`` (when given) AND the
    ``where`` predicate holds (when given). It applies to the candidates of the
    campaigns and channels in scope; others are untouched.
    """

    name: str
    action: Literal["exclude", "include"] = "exclude"
    segments: list[str] | None = Field(None, description="'Customers in' these segments.")
    where: str | None = Field(
        None,
        description="Spark SQL predicate over customer and candidate columns, of the allowed kinds "
        "(contact_spark/config/predicates.py).",
    )
    campaigns: list[str] | Literal["any"] = ANY
    channels: list[str] | Literal["any"] = ANY
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not RULE_NAME.match(value):
            raise ValueError(
                f"rule name '{value}' must be lower-case letters, digits and _ (e.g. no_sms_to_vip)"
            )
        return value

    @field_validator("where")
    @classmethod
    def _where(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("'where' is empty: remove it or give a predicate, e.g. propensity < 0.01")
        return value

    @model_validator(mode="after")
    def _has_condition(self) -> EligibilityRule:
        if self.segments is None and self.where is None:
            raise ValueError(f"rule '{self.name}' has neither 'segments' nor 'where': give at least one")
        if self.segments is not None and not self.segments:
            raise ValueError(f"rule '{self.name}': 'segments' is an empty list")
        return self

    @model_validator(mode="after")
    def _where_only_filters(self) -> EligibilityRule:
        if self.where is not None:
            try:
                check_predicate(self.where)
            except PredicateError as exc:
                raise ValueError(f"eligibility rule '{self.name}': 'where' refused: {exc}") from None
        return self


class EligibilitySettings(StrictModel):
    """Eligibility rules and switches."""

    rules: list[EligibilityRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> EligibilitySettings:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"two eligibility rules are named '{rule.name}': names must be unique")
            seen.add(rule.name)
        return self
