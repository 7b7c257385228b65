"""The wheel as users get it, and interpreters that can only import contact_spark from it.

``venv_without_project`` makes a venv that sees this venv's dependencies but not the editable
install of the source tree: a job run with it imports ``contact_spark`` from the wheel on
``--py-files`` (or from the wheel installed into it), never from the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

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


def site_packages(python: Path) -> Path:
    """The site-packages directory of the interpreter ``python``."""
    return Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
    )


def venv_without_project(where: Path) -> Path:
    """A venv whose site-packages points at this one's, minus the editable contact_spark."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # Plain directory lines: the .pth files in there (the editable finder) are not run.
    (site_packages(python) / "_project_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return python


def install_wheel(wheel: Path, python: Path) -> None:
    """Install the wheel (no dependencies) into the venv of ``python``.

    ``--target``: pip must not look at the contact_spark this venv's dependencies path shows
    (the editable install's metadata), let alone uninstall it.
    """
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(site_packages(python)),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def isolated_env(python: Path, cache: Path) -> dict[str, str]:
    """Environment of a spark-submit whose driver and Python workers run ``python``."""
    env = {
        **os.environ,
        "PYSPARK_PYTHON": str(python),
        "PYSPARK_DRIVER_PYTHON": str(python),
        "XDG_CACHE_HOME": str(cache),  # numba's cache of the wheel's kernels
    }
    env.pop("PYTHONPATH", None)
    return env
