"""The rule language: YAML parsing, validation messages that name the rule and the fix,
the default energy-retailer policy, name checks and unsatisfiable rule sets."""

from __future__ import annotations

import pytest
import yaml

from contact_spark.config.policy import MaxOffers, NeverTogether
from contact_spark.policy import DEFAULT_POLICY_PATH, PolicyConfig, PolicyError, compile_policy
from contact_spark.solver.satisfiability import check_satisfiable, find_unsatisfiable_core

CAMPAIGNS = ["CROSS_SELLING", "SOLUTION"]
CHANNELS = ["DEM", "SMS", "TLS"]


def parse(text: str) -> PolicyConfig:
    return PolicyConfig.from_yaml_text(text)


def test_default_policy_file_has_top_level_rules_and_loads() -> None:
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    assert list(data) == ["rules"]
    policy = PolicyConfig.default()
    assert len(policy.rules) == 14
    check_satisfiable(policy, CAMPAIGNS, CHANNELS)


def test_default_policy_expresses_the_seed_rules() -> None:
    """Seed 000: per-campaign spacing, cross-campaign per-month maxima, yearly maxima."""
    rules = {r.name: r for r in PolicyConfig.default().rules}
    spacing = rules["tls_every_6_months_per_campaign"]
    assert isinstance(spacing, MaxOffers) and spacing.per_campaign
    assert (spacing.window_months, spacing.limit, spacing.channels) == (6, 1, ("TLS",))
    together = rules["tls_alone_in_month"]
    assert isinstance(together, NeverTogether) and together.window_months == 1
    yearly = {
        (r.campaigns[0], r.channels[0]): r.limit
        for r in PolicyConfig.default().rules
        if isinstance(r, MaxOffers) and r.window_months == 12
    }
    assert yearly == {
        ("CROSS_SELLING", "TLS"): 2,
        ("SOLUTION", "TLS"): 1,
        ("CROSS_SELLING", "DEM"): 6,
        ("SOLUTION", "DEM"): 2,
        ("CROSS_SELLING", "SMS"): 6,
        ("SOLUTION", "SMS"): 2,
    }


def test_policy_key_wrapper_is_accepted() -> None:
    policy = parse("policy:\n  rules:\n    - {name: x, type: max_offers, window_months: 1, limit: 1}\n")
    assert policy.rules[0].name == "x"


def test_models_are_frozen() -> None:
    policy = PolicyConfig.default()
    with pytest.raises(Exception, match="frozen"):
        policy.rules[0].name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("- {name: x, type: max_offerz, window_months: 1, limit: 1}", "does not match"),
        ("- {name: x, type: max_offers, window_months: 0, limit: 1}", "whole number at or above"),
        ("- {name: x, type: max_offers, window_months: 1, limit: -1}", "limit"),
        ("- {name: x, type: max_offers, window_months: 1, limit: 1, colour: red}", "remove this key"),
        ("- {name: x, type: max_offers, limit: 1}", "add this key"),
        ("- {name: x, type: min_offers, window_months: 1, limit: 0}", "set limit >= 1"),
        ("- {name: x, type: never_together, a: {channels: []}, b: {}}", "empty list"),
        ("- {name: x, type: max_offers, channels: [DEM, DEM], window_months: 1, limit: 1}", "more than once"),
        ("- {name: x, type: max_offers, channels: all, window_months: 1, limit: 1}", "'any'"),
    ],
)
def test_invalid_rules_name_the_rule_and_say_how_to_fix(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse("rules:\n  " + text)
    assert info.value.rule_name == "x"
    assert fragment in str(info.value)


def test_duplicate_rule_names_are_rejected() -> None:
    text = "rules:\n" + "".join(
        "  - {name: same, type: max_offers, window_months: 1, limit: 1}\n" for _ in range(2)
    )
    with pytest.raises(PolicyError, match="unique name"):
        parse(text)


def test_a_key_given_twice_in_a_rule_is_an_error_naming_the_line_and_key() -> None:
    text = "rules:\n  - {name: one_dem, type: max_offers, window_months: 1, limit: 1}\n  - name: x\n    limit: 1\n    limit: 3\n"
    with pytest.raises(PolicyError) as info:
        parse(text)
    assert str(info.value) == (
        "policy rule '<policy>': <yaml text>: line 5: not valid YAML: "
        "key 'limit' is given twice (lines 4 and 5): keep one"
    )


def test_yaml_is_never_executed() -> None:
    with pytest.raises(PolicyError, match="not valid YAML"):
        parse("rules: !!python/object/apply:os.system ['echo hacked']")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "{name: fax_cap, type: max_offers, channels: [FAX], window_months: 1, limit: 1}",
            "unknown channel ['FAX']",
        ),
        ("{name: promo, type: only_after, a: {campaigns: [PROMO]}, b: {}}", "unknown campaign ['PROMO']"),
    ],
)
def test_check_names_names_unknown_campaigns_and_channels(rule: str, message: str) -> None:
    policy = parse("rules:\n  - " + rule)
    with pytest.raises(PolicyError) as info:
        policy.check_names(CAMPAIGNS, CHANNELS)
    assert message in str(info.value)
    assert info.value.rule_name in ("fax_cap", "promo")
    assert isinstance(info.value, ValueError)


def test_max_zero_over_everything_is_unsatisfiable_and_named() -> None:
    policy = parse(
        "rules:\n"
        "  - {name: spacing, type: max_offers, channels: [DEM], window_months: 2, limit: 1}\n"
        "  - {name: freeze, type: max_offers, window_months: 3, limit: 0}\n"
    )
    with pytest.raises(PolicyError) as info:
        check_satisfiable(policy, CAMPAIGNS, CHANNELS)
    assert info.value.rule_name == "freeze"
    assert "no contact at all" in str(info.value)


def test_max_zero_on_part_of_the_scope_is_allowed() -> None:
    policy_ok = parse(
        "rules:\n  - {name: no_tls, type: max_offers, channels: [TLS], window_months: 1, limit: 0}\n"
    )
    check_satisfiable(policy_ok, CAMPAIGNS, CHANNELS)


def test_rules_that_together_forbid_everything_are_named() -> None:
    """Each rule alone is fine; together only "no contact" is left: SMS only after a DEM,
    no DEM at all, and TLS never with anything (campaign scopes do not matter)."""
    policy = parse(
        "rules:\n"
        "  - {name: no_dem, type: max_offers, channels: [DEM], window_months: 1, limit: 0}\n"
        "  - {name: sms_after_dem, type: only_after, a: {channels: [DEM]}, b: {channels: [SMS]}}\n"
        "  - {name: harmless, type: max_offers, window_months: 2, limit: 5}\n"
        "  - {name: no_tls, type: max_offers, channels: [TLS], window_months: 12, limit: 0}\n"
    )
    with pytest.raises(PolicyError) as info:
        check_satisfiable(policy, CAMPAIGNS, CHANNELS)
    assert info.value.rule_name == "no_dem, sms_after_dem, no_tls"


def test_contradicting_min_and_max_are_named() -> None:
    """The minimal contradicting set is named, within the default time budget once the
    solver is compiled. A minimum needs the solver's DP, whose first call compiles it:
    seconds on a cold numba cache (a fresh clone, as in CI), which the check's 2 s budget
    would count, leaving the deletion filter no time. So the same question is asked first
    with a budget that cannot run out (same answer required), and the default-budget check
    then runs on the compiled solver."""
    policy = parse(
        "rules:\n"
        "  - {name: tls_spacing, type: max_offers, channels: [TLS], window_months: 2, limit: 1}\n"
        "  - {name: dem_cap, type: max_offers, channels: [DEM], window_months: 1, limit: 1}\n"
        "  - {name: call_monthly, type: min_offers, channels: [TLS], window_months: 1, limit: 1}\n"
    )
    core = find_unsatisfiable_core(policy, CAMPAIGNS, CHANNELS, time_budget=600.0)
    assert core is not None and core[0] == ["tls_spacing", "call_monthly"]
    with pytest.raises(PolicyError) as info:
        check_satisfiable(policy, CAMPAIGNS, CHANNELS)
    assert info.value.rule_name == "tls_spacing, call_monthly"
    assert "contradict" in str(info.value)


def test_compiler_expands_per_campaign_and_per_channel() -> None:
    policy = parse(
        "rules:\n"
        "  - {name: dup, type: max_offers, per_campaign: true, per_channel: true, window_months: 3, limit: 1}\n"
        "  - {name: pair, type: never_followed_by, per_campaign: true, a: {channels: [DEM]}, b: {channels: [TLS]}, window_months: 2}\n"
    )
    compiled = compile_policy(policy, CAMPAIGNS, CHANNELS)
    assert [a.cells for a in compiled.window_atoms] == [(k,) for k in range(6)]
    assert [a.label for a in compiled.window_atoms][:2] == [
        "dup[CROSS_SELLING/DEM]",
        "dup[CROSS_SELLING/SMS]",
    ]
    assert [(p.a, p.b) for p in compiled.pair_atoms] == [((0,), (2,)), ((3,), (5,))]


def test_errors_name_the_rule_even_through_plain_pydantic_validation() -> None:
    """The app config validates the policy with pydantic directly: the rule name and the
    fix hint must survive in that message too."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        PolicyConfig.model_validate(
            {"rules": [{"name": "tls_spacing", "type": "max_offers", "window_months": 0, "limit": 1}]}
        )
    text = str(info.value)
    assert "rule 'tls_spacing'" in text and "window_months" in text and "whole number" in text


def test_max_campaigns_parses_and_compiles_to_one_atom_per_channel_copy() -> None:
    policy = parse(
        "rules:\n"
        "  - {name: one_campaign, type: max_campaigns, window_months: 1, limit: 1}\n"
        "  - {name: two_by_mail, type: max_campaigns, channels: [DEM], per_channel: true,"
        " window_months: 3, limit: 2}\n"
    )
    compiled = compile_policy(policy, CAMPAIGNS, CHANNELS)
    assert [(a.label, a.cells, a.window, a.limit) for a in compiled.campaign_atoms] == [
        ("one_campaign", (0, 1, 2, 3, 4, 5), 1, 1),
        ("two_by_mail[DEM]", (0, 3), 3, 2),
    ]


def test_max_campaigns_per_campaign_is_refused_with_the_fix() -> None:
    with pytest.raises(PolicyError, match="remove per_campaign"):
        PolicyConfig.from_mapping(
            {
                "rules": [
                    {
                        "name": "x",
                        "type": "max_campaigns",
                        "per_campaign": True,
                        "window_months": 1,
                        "limit": 1,
                    }
                ]
            }
        )


def test_loading_a_config_imports_no_solver() -> None:
    """Config is pure data: loading it builds no DP and imports neither the solver nor numba."""
    import subprocess
    import sys

    code = (
        "import sys; from contact_spark.config import load_config; load_config(); "
        "bad = sorted(m for m in sys.modules if m.startswith(('contact_spark.solver', 'numba', 'scipy')));"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_catalogue_without_minimum_rules_is_checked_by_reasoning_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """catalogue_50 (50 offers x 4 channels, 28 rules, no min_offers): whether some contact
    can come first is decided on the compiled rules; no solver is ever called."""
    from pathlib import Path

    import contact_spark.solver.kernel as kernel
    from contact_spark.config import load_config

    def no_solve(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the satisfiability check ran a solver")

    monkeypatch.setattr(kernel, "solve", no_solve)
    config = load_config(Path(__file__).resolve().parents[2] / "conf/examples/catalogue_50.yaml")
    check_satisfiable(config.policy, list(config.campaigns), list(config.channels), config.run.horizon_months)


def test_only_after_everywhere_leaves_no_first_contact_and_is_named() -> None:
    """Every contact waits for an earlier one: no plan can start, so none has a contact."""
    policy = parse(
        "rules:\n"
        "  - {name: dem_after_sms, type: only_after, a: {channels: [SMS]}, b: {channels: [DEM, TLS]}}\n"
        "  - {name: sms_after_dem, type: only_after, a: {channels: [DEM]}, b: {channels: [SMS]}}\n"
        "  - {name: harmless, type: max_offers, window_months: 2, limit: 5}\n"
    )
    with pytest.raises(PolicyError) as info:
        check_satisfiable(policy, CAMPAIGNS, CHANNELS)
    assert info.value.rule_name == "dem_after_sms, sms_after_dem"
