"""The ``contacts:`` config section: defaults, strictness, monotonicity guard."""

from __future__ import annotations

import pytest

from contact_spark.config import load_config
from contact_spark.config.contacts import ContactSettings
from contact_spark.errors import ConfigError


def test_default_yaml_section_equals_the_model_defaults() -> None:
    """contact_spark/config/default.yaml documents the defaults: it must not drift from the code."""
    assert load_config().contacts == ContactSettings()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("contacts.score.wieghts", {}, "contacts.score.wieghts: unknown key"),
        ("contacts.default_region", "XX", "not a region known to phonenumbers"),
        ("contacts.usage.mobile_types", ["mobil"], "unknown phone types ['mobil']"),
        ("contacts.score.outcome_values.bounced", 0.7, "bounced must be <="),
        ("contacts.score.domain_factors.typo", 1.5, "values must be in [0, 1]"),
        ("contacts.shared.non_owner_factor", 2, "less than or equal to 1"),
    ],
)
def test_bad_settings_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        load_config(overrides={key: value})
    assert message in str(err.value)


def test_override_one_weight_keeps_the_others() -> None:
    config = load_config(overrides={"contacts.score.weights.history": 400, "contacts.default_region": "de"})
    assert config.contacts.score.weights.history == 400
    assert config.contacts.score.weights.sources == 200
    assert config.contacts.default_region == "DE"
