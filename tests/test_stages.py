"""The stage registry is consistent: unique names, one producer per table, needs produced
earlier (``run_pipeline`` relies on it to skip the needs check), the pipeline's selection."""

from __future__ import annotations

from collections import Counter

from contact_spark.config import load_config
from contact_spark.pipeline import pipeline_stages
from contact_spark.stages import STAGES, producer, stage_order


def test_names_are_unique_and_order_is_the_position() -> None:
    names = [s.name for s in STAGES]
    assert len(set(names)) == len(names)
    assert [stage_order(n) for n in names] == list(range(len(names)))


def test_every_table_has_one_producer_and_every_need_is_produced_earlier() -> None:
    produced = Counter(table for s in STAGES for table in s.produces)
    assert [t for t, n in produced.items() if n > 1] == []
    for stage in STAGES:
        for table in stage.needs:
            assert stage_order(producer(table).name) < stage_order(stage.name), (stage.name, table)


def test_the_pipeline_runs_the_enabled_stages_in_order() -> None:
    config = load_config()
    names = [s.name for s in pipeline_stages(config, generate=False, report=True)]
    assert names[0] == "load_inputs" and names[-1] == "report"
    assert "generate" not in names and "validate" in names
    assert names == sorted(names, key=stage_order)
    with_segments = load_config(overrides={"segments.enabled": True})
    assert "segments" in [s.name for s in pipeline_stages(with_segments, generate=True, report=False)]
