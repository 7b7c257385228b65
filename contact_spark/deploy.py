"""Running the package from a wheel shipped with ``spark-submit --py-files``.

A pure-Python wheel is a zip archive that Python imports from directly, but two things
do not follow it by themselves:

* **numba's on-disk cache** (``@njit(cache=True)`` in the solver) has no cache locator
  for modules inside a ``.whl`` (it knows plain files and ``.zip``) and refuses to
  import; :class:`WheelCacheLocator` caches such modules in ``NUMBA_CACHE_DIR`` when set
  (numba's own zip locator ignores it), else in numba's user-wide cache dir, else — an
  executor whose home is not writable — in a directory under the temporary directory.
* **Python workers**: PySpark puts ``--py-files`` entries on the workers' ``sys.path``
  only for ``.zip``/``.egg``/``.jar`` names; :func:`job_session` registers the wheel too.

Installed (unpacked) packages — ``pip install``, a Databricks library — need none of this:
every function here is a no-op then.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".whl", ".zip", ".egg")
NUMBA_LOCATORS_ENV = "NUMBA_CACHE_LOCATOR_CLASSES"


def package_location() -> str:
    """Where ``contact_spark`` is imported from (a directory, or a path inside an archive)."""
    import contact_spark

    return str(Path(contact_spark.__file__).parent)


def package_archive() -> str | None:
    """The wheel/zip file the package is imported from, or None for an unpacked package."""
    path = Path(package_location())
    for candidate in (path, *path.parents):
        if candidate.suffix in ARCHIVE_SUFFIXES and candidate.is_file():
            return str(candidate)
    return None


def _split_archive_path(py_file: str) -> tuple[str, str] | None:
    parts = Path(py_file).parts
    for i, part in enumerate(parts):
        if part.endswith(".whl"):
            return str(Path(*parts[: i + 1])), PurePosixPath(*parts[i + 1 :]).as_posix()
    return None


try:  # numba >= 0.61 ships a locator for zip archives; a wheel only needs its path split.
    from numba.core.caching import ZipCacheLocator as _ZipCacheLocator

    _HAS_ZIP_LOCATOR = True
except ImportError:  # pragma: no cover - older numba: modules in a wheel are not cached
    _HAS_ZIP_LOCATOR = False

if _HAS_ZIP_LOCATOR:

    class WheelCacheLocator(_ZipCacheLocator):
        """numba cache locator for modules imported from inside a ``.whl`` file.

        The cache goes to the first writable of ``NUMBA_CACHE_DIR``, numba's user-wide cache
        dir (``$XDG_CACHE_HOME/numba``, ``~/.cache/numba``) and ``<tmp>/contact_spark-numba``.
        """

        def __init__(self, py_func: Any, py_file: str) -> None:
            super().__init__(py_func, py_file)
            subpath = self.get_suitable_cache_subpath(py_file)
            for path in _cache_dirs(self._cache_path, subpath):
                self._cache_path = path
                try:
                    self.ensure_cache_path()
                    return
                except OSError:
                    continue
            raise OSError(f"no writable numba cache directory for {py_file}: set NUMBA_CACHE_DIR")

        @staticmethod
        def _split_zip_path(py_file: str) -> tuple[str, str]:
            split = _split_archive_path(py_file)
            if split is None:
                raise ValueError("No wheel found in path")
            return split

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            if _split_archive_path(py_file) is None:
                return None
            return cls(py_func, py_file)


def _cache_dirs(user_wide: str, subpath: str) -> list[str]:
    """Where a wheel module's kernels may be cached, in order of preference."""
    from numba.core import config

    cache_dir = getattr(config, "CACHE_DIR", "")  # set at import from NUMBA_CACHE_DIR (not declared)
    dirs = [os.path.join(cache_dir, subpath)] if cache_dir else []
    return [*dirs, user_wide, os.path.join(tempfile.gettempdir(), "contact_spark-numba", subpath)]


def _locator_spec() -> str:
    """The value of NUMBA_CACHE_LOCATOR_CLASSES: numba's own locators, then ours."""
    from numba.core.caching import CacheImpl

    names = [cls.__name__ for cls in CacheImpl._locator_classes if cls.__module__.startswith("numba.")]
    return ",".join([*names, f"{__name__}.WheelCacheLocator"])


def enable_wheel_imports() -> dict[str, str]:
    """Let this process import the solver from a wheel; return the Spark conf workers need.

    Call it before the solver is imported (jobs do it first thing). Empty when the
    package is not imported from a wheel.
    """
    archive = package_archive()
    if archive is None or not archive.endswith(".whl") or not _HAS_ZIP_LOCATOR:
        return {}
    from numba.core.caching import CacheImpl

    if WheelCacheLocator not in CacheImpl._locator_classes:
        if "contact_spark.solver.dp" in sys.modules:
            log.warning("the solver was imported before enable_wheel_imports(): numba caching may fail")
        CacheImpl._locator_classes.append(WheelCacheLocator)
    return {f"spark.executorEnv.{NUMBA_LOCATORS_ENV}": os.environ.get(NUMBA_LOCATORS_ENV) or _locator_spec()}


def ship_archive_to_workers(spark: SparkSession) -> str | None:
    """Put the wheel the driver imports from on the Python workers' ``sys.path``.

    spark-submit has already copied ``--py-files`` to every executor; PySpark adds only
    ``.zip``/``.egg`` names to the workers' path, so a ``.whl`` is registered here the way
    PySpark registers a ``.zip`` (its ``_python_includes``, sent with every Python UDF).
    """
    archive = package_archive()
    if archive is None:
        return None
    sc = spark.sparkContext
    name = os.path.basename(archive)
    includes = getattr(sc, "_python_includes", None)
    if includes is None:  # Spark Connect: no Python workers of ours to configure
        return None
    if name not in includes:
        submitted = {
            os.path.basename(p) for p in sc.getConf().get("spark.submit.pyFiles", "").split(",") if p
        }
        if name not in submitted:
            sc.addFile(archive)
        includes.append(name)
    return archive


def job_session(app_name: str) -> SparkSession:
    """The Spark session of a job: ``get_spark`` plus what a wheel on ``--py-files`` needs.

    In local mode (``--master local[n]``) the Python workers default to this interpreter,
    so a venv's packages are used rather than the first ``python3`` on PATH.
    """
    from contact_spark.spark import get_spark

    extra = enable_wheel_imports()
    if os.environ.get("PYSPARK_GATEWAY_PORT") and not os.environ.get("PYSPARK_PYTHON"):
        # spark-submit without spark.pyspark.python: in local mode the workers run on this
        # machine, so they use this interpreter (a venv's packages), not `python3` on PATH.
        if _submitted_master().startswith("local"):
            os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = get_spark(app_name, extra_conf=extra)
    ship_archive_to_workers(spark)
    log.info("contact_spark from %s", package_archive() or package_location())
    return spark


def _submitted_master() -> str:
    """The master spark-submit was given (its JVM is already running)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return SparkConf().get("spark.master", "") or ""
