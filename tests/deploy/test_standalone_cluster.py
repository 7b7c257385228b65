"""spark-submit of the wheel to a real Spark standalone cluster, with native Delta.

A master and two workers (1 core, 1 GB each) run on 127.0.0.1, started with the
``spark-class`` of the pyspark install, with their work, log and local directories under
tmp. The pipeline job is submitted to ``spark://127.0.0.1:<port>`` in client mode with the
Delta jars of ``make delta-jars``: the driver runs here, the two executors on the workers,
and every Python process (driver and the executors' workers) runs an interpreter that can
import ``contact_spark`` only from the wheel on ``--py-files``. The cluster is stopped
(process groups killed) whatever happens. The cluster run is also the fault suite's rerun
of a local run killed in its price iterations (the test's docstring says why).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyspark
import pytest
from pyspark.sql import SparkSession
from spark_conf import TINY_INPUTS, delta_conf
from test_plan_pinned import DEMO_PLAN_FINGERPRINT

from contact_spark.io.fingerprint import table_fingerprint
from tests.faults.kill import assert_the_pinned_plan_once, kill_when_logged, pipeline, run_arguments

from .packaging import ROOT, SPARK_SUBMIT, isolated_env, venv_without_project

SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"
WORKERS = 2
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running standalone cluster: its URLs, the workers' work dirs and the daemons' logs."""

    master_url: str
    webui: str
    work_dirs: list[Path]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """The master's status page as JSON (workers, running and completed applications)."""
        with urllib.request.urlopen(f"{self.webui}/json/", timeout=5) as response:
            return dict(json.load(response))

    def alive_workers(self) -> int:
        try:
            workers = self.state()["workers"]
        except (OSError, urllib.error.URLError, ValueError):
            return 0  # the master is not listening yet
        return sum(1 for w in workers if w["state"] == "ALIVE")

    def diagnostics(self) -> str:
        """The tails of the daemons' logs and of the executors' stderr, for a failure message."""
        files = sorted(self.logs.glob("*.log")) + sorted(p for d in self.work_dirs for p in d.rglob("stderr"))
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in files)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                pytest.fail(f"the {name} exited with {process.returncode}\n{cluster.diagnostics()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f}s\n{cluster.diagnostics()}")
        time.sleep(0.5)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Kill each daemon's process group (the workers' executors and Python workers included)."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def daemon_env(root: Path) -> dict[str, str]:
    """Environment of the master and workers (the executors inherit it): everything under tmp."""
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(root / "logs"),
        "SPARK_WORKER_DIR": str(root / "work"),
        "SPARK_LOCAL_DIRS": str(root / "local"),
        "SPARK_DAEMON_MEMORY": "512m",
        "XDG_CACHE_HOME": str(root / "cache"),  # the executors' numba cache, not the home's
    }
    env.pop("PYTHONPATH", None)  # the executors must not see the source tree either
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("standalone")
    env = daemon_env(root)
    logs = root / "logs"
    logs.mkdir()
    port, webui_port = free_port(), free_port()
    cluster = Cluster(
        master_url=f"spark://127.0.0.1:{port}",
        webui=f"http://127.0.0.1:{webui_port}",
        work_dirs=[root / f"worker{i}" for i in range(WORKERS)],
        logs=logs,
    )

    def start(name: str, *args: str) -> None:
        with (logs / f"{name}.log").open("wb") as log:
            cluster.processes[name] = subprocess.Popen(
                [str(SPARK_CLASS), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    try:
        master = ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(webui_port)]
        start("master", "org.apache.spark.deploy.master.Master", *master)
        # Workers that find no master retry only after seconds: start them once it listens.
        wait_for(
            lambda: _listening(port) and _listening(webui_port),
            START_TIMEOUT,
            "the master did not listen",
            cluster,
        )
        for i, work_dir in enumerate(cluster.work_dirs):
            worker = ["--host", "127.0.0.1", "--cores", "1", "--memory", "1g", "--work-dir", str(work_dir)]
            worker += ["--webui-port", str(free_port())]
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", cluster.master_url, *worker)
        wait_for(
            lambda: cluster.alive_workers() == WORKERS, START_TIMEOUT, "the workers did not register", cluster
        )
        yield cluster
    finally:
        stop(list(cluster.processes.values()))


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_run_killed_in_its_price_iterations_is_resumed_by_the_wheel_on_a_standalone_cluster(
    cluster: Cluster, wheel: Path, spark: SparkSession, tmp_path: Path
) -> None:
    """Two guarantees in one run, to pay for one demo pipeline instead of two in CI: the
    fault suite's kill (a local ``jobs/run_pipeline.py`` on delta-rs, SIGKILLed with its JVM
    as it records its first price iteration) and the production path (the same command,
    spark-submitted as a wheel to a standalone cluster with native Delta). The cluster run
    takes the dead process's run lock over, keeps the generated inputs (the fingerprint
    leaves storage out, so the engines share it), resumes the iterations delta-rs recorded or
    starts afresh, and plans the pinned demo plan row for row, with no row twice."""
    from deltalake import DeltaTable

    base = tmp_path / "lakehouse"
    # The line is logged as the first price iteration is being recorded: the kill lands
    # before, inside or just after that Delta write.
    kill_when_logged(pipeline(base), "capacity dual iteration 0:")

    python = venv_without_project(tmp_path / "venv")
    env = isolated_env(python, tmp_path / "cache")
    env.update(SPARK_LOCAL_IP="127.0.0.1", SPARK_LOCAL_DIRS=str(tmp_path / "local"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    confs = {
        **delta_conf(),
        # One shuffle partition and task per executor core: on the demo's tiny tables each
        # more task costs more than its work (the local test session measured the same).
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        **TINY_INPUTS,  # interpreted expressions for the demo's tiny queries (tests/spark_conf.py)
        "spark.executor.extraJavaOptions": "-XX:+UseParallelGC",
    }
    started = time.monotonic()
    done = subprocess.run(
        [
            str(SPARK_SUBMIT),
            "--master",
            cluster.master_url,
            "--driver-memory",
            "1g",
            "--executor-memory",
            "1g",
            "--executor-cores",
            "1",
            "--total-executor-cores",
            str(WORKERS),
            *[arg for key, value in confs.items() for arg in ("--conf", f"{key}={value}")],
            "--py-files",
            str(wheel),
            str(ROOT / "jobs" / "run_pipeline.py"),
            # The killed run's arguments (tests/faults/kill.py): the shared demo run's base.
            *run_arguments(base),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{output[-6000:]}\n{cluster.diagnostics()}"
    print(f"spark-submit to {cluster.master_url}: {elapsed:.0f}s")

    finished = re.search(r"^run (\S+) finished \((\S+) Delta backend\)", done.stdout, re.MULTILINE)
    assert finished, done.stdout
    run_id, backend = finished.groups()
    assert backend == "spark"  # native Delta: the Delta extension was loaded from the jars
    assert f"package contact_spark from {wheel}" in done.stdout
    assert "has exited without releasing it: taken over" in output
    assert "input tables already hold this configuration's demo data: kept" in output
    # Resumed when the iteration's commit landed, started afresh otherwise: the same plan.
    resumed = "capacity: resuming run demo-run at iteration 1" in output
    assert resumed or "capacity dual iteration 0:" in output
    print(f"the cluster run {'resumed the recorded iterations' if resumed else 'started afresh'}")
    assert_the_pinned_plan_once(spark, base)

    # The plan: this run's rows only, and the pinned demo plan row for row.
    plan = DeltaTable(str(base / "plan")).to_pyarrow_table()
    assert plan.num_rows > 0
    assert set(plan.column("run_id").to_pylist()) == {run_id}
    native_plan = spark.read.format("delta").load(str(base / "plan")).drop("run_id")
    assert table_fingerprint(native_plan) == DEMO_PLAN_FINGERPRINT

    # The independent validator's verdict: no violation, and it said so.
    assert DeltaTable(str(base / "violations")).to_pyarrow_table().num_rows == 0
    assert f"validation of run {run_id}: the plan passes every check" in output
    stages = DeltaTable(str(base / "run_stages")).to_pyarrow_table().column("stage").to_pylist()
    assert "validate" in stages

    # The executors ran on the two workers: one finished application on 2 cores, and each
    # worker's work dir holds that application's executor, which fetched the wheel.
    (app,) = cluster.state()["completedapps"]
    assert (app["name"], app["state"], app["cores"]) == ("contact_spark.run_pipeline", "FINISHED", WORKERS)
    for work_dir in cluster.work_dirs:
        assert [p.name for p in work_dir.iterdir()] == [app["id"]]
        (executor,) = (work_dir / app["id"]).iterdir()
        assert (executor / wheel.name).is_file()
    assert list(cwd.iterdir()) == []
