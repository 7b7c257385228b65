"""The way users run it: a wheel built from setup.py, run by the spark-submit pyspark ships.

One end-to-end run in local mode on a 100-customer demo base. The Python interpreter is a
throw-away venv that sees the project's dependencies but not the editable install, and the
job runs from an empty directory without ``--config``: the driver *and* the Python workers
can only import ``contact_spark`` from the wheel on ``--py-files``, and the default
configuration is read from inside it. The wheel installed with pip loads it too.
"""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from contact_spark.config import load_config

from .packaging import ROOT, SPARK_SUBMIT, install_wheel, isolated_env, site_packages, venv_without_project


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"contact_spark/config/default.yaml", "contact_spark/config/default_policy.yaml"} <= names
    packaged = zipfile.ZipFile(wheel).read("contact_spark/config/default.yaml")
    assert packaged == (ROOT / "contact_spark" / "config" / "default.yaml").read_bytes()
    assert "contact_spark/deploy.py" in names and "contact_spark/stages.py" in names
    assert not any(n.startswith(("tests/", "jobs/", "conf/")) for n in names)


def test_installed_wheel_loads_its_default_config(wheel: Path, tmp_path: Path) -> None:
    """``pip install`` of the wheel alone, outside the repository: ``load_config()`` reads the
    default configuration the wheel carries."""
    python = venv_without_project(tmp_path / "venv")
    install_wheel(wheel, python)
    empty = tmp_path / "empty"
    empty.mkdir()
    script = (
        "import json, contact_spark; from contact_spark.config import load_config; c = load_config(); "
        "print(contact_spark.__file__); print(c.campaign_names, c.channel_names, c.run.first_month); "
        "print(c.model_dump_json())"
    )
    done = subprocess.run(
        [str(python), "-c", script],
        cwd=empty,
        env=isolated_env(python, tmp_path / "cache"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    location, names, dumped = done.stdout.splitlines()
    assert location == str(site_packages(python) / "contact_spark" / "__init__.py")
    assert names == "['CROSS_SELLING', 'SOLUTION'] ['DEM', 'SMS', 'TLS'] 2027-01-01"
    assert json.loads(dumped) == json.loads(load_config().model_dump_json())
    assert list(empty.iterdir()) == []


@pytest.mark.deploy_only  # make test-deploy; in CI the standalone-cluster test spark-submits the wheel
def test_spark_submit_runs_the_pipeline_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    from deltalake import DeltaTable

    python = venv_without_project(tmp_path / "venv")
    env = isolated_env(python, tmp_path / "cache")
    isolated = subprocess.run(
        [str(python), "-c", "import contact_spark"], cwd=tmp_path, env=env, capture_output=True, timeout=60
    )
    assert isolated.returncode != 0, "the test venv must not see the source tree"
    base = tmp_path / "lakehouse"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = subprocess.run(
        [
            str(SPARK_SUBMIT),
            "--master",
            "local[2]",
            "--driver-memory",
            "2g",
            "--conf",
            "spark.sql.shuffle.partitions=4",
            "--conf",
            "spark.default.parallelism=4",
            "--conf",
            "spark.ui.enabled=false",
            "--py-files",
            str(wheel),
            str(ROOT / "jobs" / "run_pipeline.py"),
            # No --config: the default configuration is read from inside the wheel.
            "--set",
            "demo.customers=100",
            "--generate",
            "--base-path",
            str(base),
            "--report-dir",
            str(tmp_path / "reports"),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"contact_spark from {wheel}" in done.stdout
    plan = DeltaTable(str(base / "plan")).to_pyarrow_table()
    assert plan.num_rows > 0
    finished = re.search(r"^run (\S+) finished", done.stdout, re.MULTILINE)
    assert finished, done.stdout
    assert set(plan.column("run_id").to_pylist()) == {finished.group(1)}
    assert list(cwd.iterdir()) == []  # nothing written next to the job: everything went to --base-path
