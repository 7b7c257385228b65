"""Two runs side by side: a scenario against its base (``jobs/compare_runs.py``, docs/scenarios.md).

``configs`` rebuilds each run's configuration (the config file, plus a scenario's recorded
overrides) and refuses runs of different horizons or catalogues; ``compare`` reads the two
runs' ``plan``, ``capacity_sensitivity`` and ``plan_summary`` and writes ``run_comparison``;
``page`` renders the comparison as one offline HTML page with the report's building blocks.
"""
