"""The report's budget sections (cost and ROI, campaign mix) and its capacity chart, built from
tiny hand-made ``run_metrics`` rows: no pipeline run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import DataFrame, SparkSession

from contact_spark.config import AppConfig, load_config
from contact_spark.report.budget import campaign_mix, roi_by, roi_section
from contact_spark.report.volume import shares_axis, volume_figures
from contact_spark.report.widgets import Charts

JAN, FEB = dt.date(2027, 1, 1), dt.date(2027, 2, 1)
METRICS = (
    "section string, metric string, plan string, month date, campaign string, channel string, "
    "value double, bound_min double, bound_max double"
)


def outcome(
    plan: str, campaign: str, channel: str, contacts: float, gross: float, cost: float
) -> list[tuple]:
    return [
        ("outcome", metric, plan, None, campaign, channel, value, None, None)
        for metric, value in (("contacts", float(contacts)), ("gross_value", gross), ("cost", cost))
    ] + [("outcome", "expected_value", plan, None, campaign, channel, gross - cost, None, None)]


@pytest.fixture(scope="module")
def two_channels(spark: SparkSession) -> DataFrame:
    """The optimizer's outcome on two channels: DEM 100 e-mails (cost 2) worth 30, TLS 2 calls
    (cost 8) worth 120, split over two campaigns; the greedy baseline's rows must not count."""
    rows = (
        outcome("optimizer", "CROSS_SELLING", "DEM", 60, 12.0, 1.2)
        + outcome("optimizer", "SOLUTION", "DEM", 40, 18.0, 0.8)
        + outcome("optimizer", "SOLUTION", "TLS", 2, 120.0, 8.0)
        + outcome("greedy", "SOLUTION", "TLS", 50, 1.0, 200.0)
    )
    return spark.createDataFrame(rows, METRICS)


def test_roi_per_channel_of_a_two_channel_toy(spark: SparkSession, two_channels: DataFrame) -> None:
    """DEM: (30 − 2) / 2 = 14 on a fifth of the cost; TLS: (120 − 8) / 8 = 14 too, at 4 a call."""
    expected = spark.createDataFrame(
        [("DEM", 100.0, 30.0, 2.0, 28.0, 14.0, 0.02, 0.2), ("TLS", 2.0, 120.0, 8.0, 112.0, 14.0, 4.0, 0.8)],
        "channel string, contacts double, gross_value double, cost double, net_value double, "
        "roi double, cost_per_contact double, budget_share double",
    )
    assert_approx_df_equality(roi_by(two_channels, "channel"), expected, 1e-9, ignore_nullable=True)


def test_roi_per_campaign_and_no_roi_without_cost(spark: SparkSession, two_channels: DataFrame) -> None:
    """CROSS_SELLING: (12 − 1.2) / 1.2 = 9; SOLUTION: (138 − 8.8) / 8.8; a free channel has no ROI."""
    free = spark.createDataFrame(outcome("optimizer", "WINBACK", "WEB", 5, 1.0, 0.0), METRICS)
    got = roi_by(two_channels.unionByName(free), "campaign").select("campaign", "net_value", "roi")
    expected = spark.createDataFrame(
        [("CROSS_SELLING", 10.8, 9.0), ("SOLUTION", 129.2, 129.2 / 8.8), ("WINBACK", 1.0, None)],
        "campaign string, net_value double, roi double",
    )
    assert_approx_df_equality(got, expected, 1e-9, ignore_nullable=True)


def test_the_roi_section_shows_the_greedy_baseline_apart(two_channels: DataFrame) -> None:
    """The whole optimizer plan: (150 − 10) / 10 = +1,400 %; the greedy's (1 − 200) / 200 = −100 %
    (rounded from −99.5 %)."""
    page = roi_section(Charts(), two_channels, load_config())
    assert "optimizer +1,400% on a cost of 10.00" in page
    assert "greedy -100% on a cost of 200.00" in page
    assert "<td class='text'>TLS</td><td>2</td><td>120.00</td><td>8.00</td><td>112.00</td>" in page


def test_campaign_mix_counts_shares_and_costs_per_month(spark: SparkSession) -> None:
    """January: 30 e-mails + 2 calls of CROSS_SELLING (0.6 + 8 = 8.6) against 8 e-mails of
    SOLUTION: 80 % / 20 %. February: SOLUTION alone. Greedy rows are not the plan."""
    volume = spark.createDataFrame(
        [
            ("volume", "contacts", "optimizer", JAN, "CROSS_SELLING", "DEM", 30.0, None, None),
            ("volume", "contacts", "optimizer", JAN, "CROSS_SELLING", "TLS", 2.0, None, None),
            ("volume", "contacts", "optimizer", JAN, "SOLUTION", "DEM", 8.0, None, None),
            ("volume", "contacts", "optimizer", FEB, "SOLUTION", "SMS", 10.0, None, None),
            ("volume", "contacts", "greedy", FEB, "CROSS_SELLING", "TLS", 99.0, None, None),
        ],
        METRICS,
    )
    expected = spark.createDataFrame(
        [
            (JAN, "CROSS_SELLING", 32.0, 0.8, 8.6),
            (JAN, "SOLUTION", 8.0, 0.2, 0.16),
            (FEB, "SOLUTION", 10.0, 1.0, 0.6),
        ],
        "month date, campaign string, contacts double, share double, cost double",
    )
    assert_approx_df_equality(campaign_mix(volume, load_config()), expected, 1e-9, ignore_nullable=True)
    assert_df_equality(campaign_mix(volume.limit(0), load_config()), expected.limit(0), ignore_nullable=True)


def test_a_capacity_line_shares_the_axis_only_within_ten_times_the_volume() -> None:
    assert shares_axis(2_499.0, 250.0) and shares_axis(250.0, 2_499.0)
    assert not shares_axis(2_500.0, 250.0) and not shares_axis(25.0, 250.0)
    assert shares_axis(0.0, 250.0) and shares_axis(900.0, 0.0)  # nothing to compare


def volume_metrics(config: AppConfig, dem_per_month: float) -> dict[str, list[dict[str, Any]]]:
    """Every month: ``dem_per_month`` e-mails and 200 calls against the call centre's 250."""
    volume, capacity = [], []
    for month in config.run.months():
        for channel, contacts in (("DEM", dem_per_month), ("TLS", 200.0)):
            volume.append(
                {
                    "plan": "optimizer",
                    "month": month,
                    "campaign": "SOLUTION",
                    "channel": channel,
                    "value": contacts,
                }
            )
        capacity.append(
            {
                "plan": "optimizer",
                "metric": "call_centre",
                "month": month,
                "value": 200.0,
                "bound_min": None,
                "bound_max": 250.0,
            }
        )
    return {"volume": volume, "capacity": capacity}


def test_a_capacity_ten_times_below_the_volumes_is_drawn_apart() -> None:
    """4,800 e-mails + 200 calls = 5,000 a month against 250 calls (20×): the call centre gets
    its own small multiple, usage against bound; at 500 e-mails (700 a month) it stays."""
    config = load_config()
    main, grid, apart = volume_figures(volume_metrics(config, 4_800.0), config)
    assert apart == ["call_centre"]
    assert [t.name for t in main.data] == ["DEM", "SMS", "TLS"]
    assert main.layout.title.text == "Planned contacts per month and channel"
    assert [(t.type, t.name) for t in grid.data] == [("bar", "usage"), ("scatter", "max")]
    assert list(grid.data[1].y) == [250.0] * 12
    main, grid, apart = volume_figures(volume_metrics(config, 500.0), config)
    assert (apart, grid) == ([], None)
    assert [t.name for t in main.data] == ["DEM", "SMS", "TLS", "capacity call_centre"]
