"""The way users run it: a wheel built from setup.py, run by the spark-submit pyspark ships.

One end-to-end run in local mode on a 100-customer demo base. The Python interpreter is a
throw-away venv that sees the project's dependencies but not the editable install, and the
job runs from an empty directory: the driver *and* the Python workers can only import
``contact_spark`` from the wheel on ``--py-files``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"


def build_wheel(dist: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("contact_spark-*.whl")
    return wheel


def venv_without_project(where: Path) -> Path:
    """A venv whose site-packages points at this one's, minus the editable contact_spark."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # Plain directory lines: the .pth files in there (the editable finder) are not run.
    (Path(site) / "_project_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return python


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "contact_spark/config/default_policy.yaml" in names
    assert "contact_spark/deploy.py" in names and "contact_spark/stages.py" in names
    assert not any(n.startswith(("tests/", "jobs/", "conf/")) for n in names)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_spark_submit_runs_the_pipeline_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    from deltalake import DeltaTable

    python = venv_without_project(tmp_path / "venv")
    isolated = subprocess.run(
        [str(python), "-c", "import contact_spark"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert isolated.returncode != 0, "the test venv must not see the source tree"
    base = tmp_path / "lakehouse"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        **os.environ,
        "PYSPARK_PYTHON": str(python),
        "PYSPARK_DRIVER_PYTHON": str(python),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # numba's cache of the wheel's kernels
    }
    env.pop("PYTHONPATH", None)
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
            "--config",
            str(ROOT / "conf" / "default.yaml"),
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
