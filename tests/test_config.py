"""Configuration: strict models whose errors name the file, the key and the fix."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from contact_spark.cli import default_run_id, parse_override
from contact_spark.config import load_config
from contact_spark.config.loader import DEFAULT_CONFIG, config_from_dict
from contact_spark.config.yaml_loader import safe_load
from contact_spark.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def default_text() -> str:
    return DEFAULT_CONFIG.read_text(encoding="utf-8")


def test_default_config_encodes_the_energy_retailer() -> None:
    config = load_config()
    assert config.campaign_names == ["CROSS_SELLING", "SOLUTION"]
    assert config.channel_names == ["DEM", "SMS", "TLS"]
    assert {ch: c.contact_kind for ch, c in config.channels.items()} == {
        "DEM": "email",
        "SMS": "mobile",
        "TLS": "phone",
    }
    assert config.run.horizon_months == 12
    assert config.run.months()[0] == dt.date(2027, 1, 1)
    assert config.run.months()[-1] == dt.date(2027, 12, 1)


def test_months_cross_the_year_boundary() -> None:
    config = load_config(overrides={"run.first_month": dt.date(2027, 11, 1), "run.horizon_months": 3})
    assert config.run.months() == [dt.date(2027, 11, 1), dt.date(2027, 12, 1), dt.date(2028, 1, 1)]


def test_unknown_key_is_named_with_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, default_text().replace("  seed: 42", "  seed: 42\n  sede: 1"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "run.sede: unknown key" in message


def test_first_month_must_be_the_first_day(tmp_path: Path) -> None:
    path = write(tmp_path, default_text().replace("first_month: 2027-01-01", "first_month: 2027-01-15"))
    with pytest.raises(ConfigError, match=r"run.first_month: .*first day of a month, e.g. 2027-01-01"):
        load_config(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "run:\n  first_month: [2027\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: not valid YAML"):
        load_config(path)


def test_a_key_given_twice_is_an_error_naming_the_file_line_and_key(tmp_path: Path) -> None:
    # The last value used to win: a call centre capped at 250 became uncapped-looking 2500.
    path = write(tmp_path, default_text().replace("      max: 250\n", "      max: 250\n      max: 2500\n"))
    first = default_text().splitlines().index("      max: 250") + 1  # the call centre's max
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert (
        str(err.value)
        == f"invalid config {path}: line {first + 1}: key 'max' is given twice (lines {first} and {first + 1}): "
        "keep one"
    )


def test_a_key_given_twice_in_a_flow_mapping_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        default_text().replace("{month: 2027-08-01, max: 125}", "{month: 2027-08-01, max: 125, max: 0}"),
    )
    line = next(
        n for n, text in enumerate(default_text().splitlines(), 1) if "{month: 2027-08-01, max: 125}" in text
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert (
        str(err.value)
        == f"invalid config {path}: line {line}: key 'max' is given twice (line {line}): keep one"
    )


def test_a_key_merged_from_an_anchor_may_be_overridden() -> None:
    text = "tls: &tls {channels: [TLS], max: 250}\nrule:\n  <<: *tls\n  max: 200\n"
    assert safe_load(text) == {
        "tls": {"channels": ["TLS"], "max": 250},
        "rule": {"channels": ["TLS"], "max": 200},
    }


def test_a_key_given_twice_in_an_override_is_an_error() -> None:
    with pytest.raises(ConfigError) as err:
        parse_override("demo={customers: 10, customers: 20}")
    assert (
        str(err.value)
        == "invalid config --set: demo: not a YAML value (key 'customers' is given twice (line 1): keep one)"
    )


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"channels.DEM.cost": -1}, "channels.DEM.cost"),
        ({"campaigns.CROSS_SELLING.success_value": 0}, "campaigns.CROSS_SELLING.success_value"),
        ({"seasonality": [1.0, 1.0]}, "seasonality has 2 weights but the horizon is 12 months"),
        ({"channels.DEM.contact_kind": "fax"}, "channels.DEM.contact_kind"),
        ({"storage.catalog": "main"}, "set both, e.g. main.crm"),
        # Numbers a run could not use: a box wider than every price, a billion partitions.
        (
            {"capacities.lagrangian.initial_step": 100},
            "capacities.lagrangian.initial_step: Input should be less than or equal to 50",
        ),
        (
            {"capacities.lagrangian.batches": 10**9},
            "capacities.lagrangian.batches: Input should be less than or equal to 10000",
        ),
        ({"demo.partitions": 10**9}, "demo.partitions: Input should be less than or equal to 10000"),
    ],
)
def test_bad_values_say_what_is_wrong(override: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(overrides=override)
    assert expected in str(err.value)


FINITE = "must be a finite number: .nan and .inf are not allowed (leave an optional bound out for no limit)"
NO_CONTACT_SUMS_TO_0 = (
    "a negative max on a sum can never hold (a plan with no contact sums to 0): give a max >= 0"
)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("{name: cap, channels: [TLS], max: .nan}", f"capacities.rules.0.max: {FINITE}"),
        ("{name: cap, channels: [TLS], max: .inf}", f"capacities.rules.0.max: {FINITE}"),
        ("{name: cap, channels: [TLS], min: -.inf}", f"capacities.rules.0.min: {FINITE}"),
        ("{name: cap, channels: [TLS], max: nan}", f"capacities.rules.0.max: {FINITE}"),
        (
            "{name: cap, channels: [TLS], max: 1e308}",
            "capacities.rules.0: capacity rule 'cap': max 1e+308 is beyond ±1e+12: "
            "give a realistic bound (leave 'max' out for no limit)",
        ),
        (
            "{name: cap, channels: [TLS], max: 250, exceptions: [{month: 2027-08-01, max: 1.0e+13}]}",
            "capacities.rules.0: capacity rule 'cap': exceptions 2027-08 max 1e+13 is beyond ±1e+12: "
            "give a realistic bound (leave 'max' out for no limit)",
        ),
        (
            "{name: cap, channels: [TLS], max: 250, exceptions: [{month: 2027-08-01, max: .inf}]}",
            f"capacities.rules.0.exceptions.0.max: {FINITE}",
        ),
        (
            "{name: cap, channels: [TLS], min: 100, max: 250, exceptions: [{month: 2027-08-01, max: 50}]}",
            "capacities.rules.0: capacity rule 'cap': in 2027-08 min 100 is above max 50",
        ),
        (
            "{name: cap, channels: [TLS], max: -1}",
            "capacities.rules.0: capacity rule 'cap': max -1: a number of contacts cannot be negative: "
            "give a bound >= 0",
        ),
        (
            "{name: budget, measure: sum, column: cost, channels: [SMS], period: year, max: -1500}",
            "capacities.rules.0: capacity rule 'budget': max -1500: a sum of cost cannot be negative: "
            "give a bound >= 0",
        ),
        (
            "{name: margin, measure: sum, column: expected_value, period: year, max: -10}",
            f"capacities.rules.0: capacity rule 'margin': max -10: {NO_CONTACT_SUMS_TO_0}",
        ),
        (
            "{name: quality, measure: average, column: propensity, min: 5}",
            "capacities.rules.0: capacity rule 'quality': min 5: an average propensity is at most 1: "
            "give e.g. 0.05 for 5 %",
        ),
    ],
)
def test_a_capacity_bound_must_be_finite_and_signed_as_its_measure_allows(rule: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(overrides={"capacities.rules": [safe_load(rule)]})
    assert err.value.problems == [problem]


@pytest.mark.parametrize(
    ("rule", "bounds"),
    [
        ("{name: cap, channels: [TLS], max: 1.0e+12}", (None, 1e12)),
        ("{name: margin, measure: sum, column: expected_value, period: year, min: -100, max: 0}", (-100, 0)),
        ("{name: value, measure: average, column: expected_value, min: -5}", (-5, None)),
        ("{name: quality, measure: average, column: propensity, min: 0.05, max: 1}", (0.05, 1)),
    ],
)
def test_a_capacity_bound_the_measure_allows_loads(
    rule: str, bounds: tuple[float | None, float | None]
) -> None:
    loaded = load_config(overrides={"capacities.rules": [safe_load(rule)]}).capacities.rules[0]
    assert (loaded.min, loaded.max) == bounds


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"channels.DEM.cost": float("nan")}, f"channels.DEM.cost: {FINITE}"),
        (
            {"campaigns.SOLUTION.success_value": 1e308},
            "campaigns.SOLUTION.success_value: Input should be less than or equal to 1000000000000",
        ),
        ({"seasonality": [1.0] * 11 + [float("inf")]}, f"seasonality.11: {FINITE}"),
        ({"contacts.sources.weights": {"CRM": float("nan")}}, f"contacts.sources.weights.CRM: {FINITE}"),
        (
            {"capacities.lagrangian.gap_tolerance": 2},
            "capacities.lagrangian.gap_tolerance: Input should be less than or equal to 1",
        ),
        (
            {"triggers.events.CONTRACT_ENDING.boost.factor": float("inf")},
            f"triggers.events.CONTRACT_ENDING.boost.factor: {FINITE}",
        ),
        (
            {"propensity.logistic_regression.reg_param": float("nan")},
            f"propensity.logistic_regression.reg_param: {FINITE}",
        ),
    ],
)
def test_every_number_of_the_config_is_finite(override: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(overrides=override)
    assert err.value.problems == [problem]


def test_campaign_names_must_be_identifiers(tmp_path: Path) -> None:
    path = write(tmp_path, default_text().replace("  SOLUTION:\n", "  solution offer:\n"))
    with pytest.raises(ConfigError, match="name 'solution offer' must be upper-case"):
        load_config(path)


def test_override_values_are_yaml() -> None:
    assert parse_override("demo.customers=1000") == ("demo.customers", 1000)
    assert parse_override("run.first_month=2027-03-01") == ("run.first_month", dt.date(2027, 3, 1))
    with pytest.raises(ConfigError, match=r"must look like key.path=value"):
        parse_override("demo.customers")


def test_an_override_selects_a_list_element_by_its_name_or_index() -> None:
    """A scenario changes one capacity rule on the command line: the rule by its name (or
    index) in ``capacities.rules``; the other rules and keys stay as the file has them."""
    config = load_config(
        overrides={
            "capacities.rules.call_centre.max": 300,
            "capacities.rules.1.max": 2000,
            "capacities.rules.call_centre.exceptions": [{"month": dt.date(2027, 10, 1), "max": 360}],
        }
    )
    call_centre, sms_budget = config.capacities.rules
    assert (call_centre.name, call_centre.max, call_centre.channels) == ("call_centre", 300, ["TLS"])
    assert [(e.month, e.max) for e in call_centre.exceptions] == [(dt.date(2027, 10, 1), 360)]
    assert (sms_budget.name, sms_budget.max) == ("sms_budget", 2000)
    tree = safe_load(default_text())
    config_from_dict(tree, overrides={"capacities.rules.call_centre.max": 300})
    assert tree["capacities"]["rules"][0]["max"] == 250  # the caller's tree is left as it was
    with pytest.raises(ConfigError) as err:
        load_config(overrides={"capacities.rules.call_centr.max": 300})
    assert err.value.problems == [
        "capacities.rules.call_centr.max: no element named 'call_centr' in the list (names: call_centre, "
        "sms_budget); name one, or give its index"
    ]
    with pytest.raises(ConfigError, match=r"capacities.rules.2.max: the list has 2 element\(s\), no index 2"):
        load_config(overrides={"capacities.rules.2.max": 300})
    with pytest.raises(ConfigError, match=r"run.seed.x: 'seed' is not a section"):
        load_config(overrides={"run.seed.x": 1})


def test_run_id_is_deterministic_and_follows_the_config() -> None:
    a = default_run_id(load_config())
    assert a == default_run_id(load_config())
    assert a.startswith("202701-")
    assert a != default_run_id(load_config(overrides={"run.seed": 7}))
    # Where tables are stored does not change what the run computes.
    assert a == default_run_id(load_config(overrides={"storage.base_path": "/elsewhere"}))
