"""numba's cache of the kernels of a wheel on ``--py-files``, where an executor can write.

Each case imports ``contact_spark`` from the wheel file (as a Python worker does: the zip on
``sys.path``) in an interpreter that cannot see the source tree, compiles one cached kernel
and prints where numba cached it. A second process must load it from there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .packaging import isolated_env, venv_without_project

SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from contact_spark.deploy import enable_wheel_imports
enable_wheel_imports()
from contact_spark.baseline import rules
print(rules.same_copy(4, 5, True, False, 2))
print(rules.same_copy.stats.cache_path)
print(sum(rules.same_copy.stats.cache_hits.values()))
"""


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return venv_without_project(tmp_path_factory.mktemp("venv") / "venv")


def compile_kernel(python: Path, wheel: Path, env: dict[str, str], cwd: Path) -> tuple[Path, int]:
    done = subprocess.run(
        [str(python), "-c", SCRIPT, str(wheel)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result, cache_path, hits = done.stdout.splitlines()
    assert result == "True"
    return Path(cache_path), int(hits)


@pytest.mark.parametrize("where", ["user_cache", "numba_cache_dir", "tmp"])
def test_wheel_kernels_are_cached_where_the_executor_can_write(
    python: Path, wheel: Path, tmp_path: Path, where: str
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    env = isolated_env(python, tmp_path / "xdg")
    env.pop("NUMBA_CACHE_DIR", None)
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    if where == "user_cache":
        expected = tmp_path / "xdg" / "numba"
    else:
        # The user-wide cache dir cannot be created, as in an executor whose home is read-only.
        env["XDG_CACHE_HOME"] = str(blocked / "cache")
        if where == "numba_cache_dir":
            env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
            expected = tmp_path / "numba"
        else:
            expected = tmp_path / "tmp" / "contact_spark-numba"
    cache_path, hits = compile_kernel(python, wheel, env, tmp_path)
    assert cache_path.parent == expected
    assert hits == 0
    assert sorted(p.suffix for p in cache_path.iterdir() if p.name.startswith("rules.same_copy-")) == [
        ".nbc",
        ".nbi",
    ]
    assert compile_kernel(python, wheel, env, tmp_path) == (cache_path, 1)
