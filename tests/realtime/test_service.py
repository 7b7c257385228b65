"""The HTTP endpoint (FastAPI TestClient) and the command line (exit codes, JSON output)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contact_spark.realtime import Snapshot, SnapshotHolder
from contact_spark.realtime.api import create_app

from .world import CONTACT, RUN_ID, customer_row, make_config, write_world

ROOT = Path(__file__).resolve().parents[2]
JAN = "2027-01-12"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    base = tmp_path / "lakehouse"
    plan = [("C1", 0, "CROSS_SELLING", "SMS")]
    write_world(base, [customer_row("C1"), customer_row("C2", privacy_consent=None)], [], plan)
    return base


def test_http_check_confirm_refresh_and_errors(base: Path) -> None:
    holder = SnapshotHolder(Snapshot.load(make_config(base), RUN_ID))
    client = TestClient(create_app(holder))
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["run_id"] == RUN_ID and health["customers"] == 2

    body = {"customer_id": "C1", "campaign": "CROSS_SELLING", "channel": "SMS", "date": JAN}
    ok = client.post("/check", json=body)
    assert ok.status_code == 200 and ok.json()["allowed"] is True
    assert ok.json()["contact"] == "+39********67"
    no = client.post("/check", json={**body, "customer_id": "C2"}).json()
    assert no["allowed"] is False
    assert [(r["code"], r["rule"]) for r in no["reasons"]] == [("PRIVACY_CONSENT_UNKNOWN", "privacy_consent")]
    unknown = client.post("/check", json={**body, "customer_id": "C9", "channel": "FAX"})
    assert unknown.status_code == 200 and unknown.json()["allowed"] is False

    done = client.post("/confirm", json={**body, "check_id": ok.json()["check_id"]})
    assert done.status_code == 200 and done.json()["recorded"] is True
    again = client.post("/confirm", json=body)
    assert again.status_code == 409
    assert "one_per_channel_month" in again.json()["error"]
    assert again.json()["decision"]["reasons"][0]["rule"] == "one_per_channel_month"
    assert client.post("/confirm", json={**body, "force": True}).json()["forced"] is True

    for bad in (
        {**body, "date": "2027-13-01"},
        {k: v for k, v in body.items() if k != "channel"},
        {**body, "customer_id": ""},
        {**body, "extra": 1},
    ):
        response = client.post("/check", json=bad)
        assert response.status_code == 422, bad
        assert set(response.json()) == {"error"} and "\n" not in response.json()["error"]
    assert (
        client.post("/check", content=b"not json", headers={"content-type": "application/json"}).status_code
        == 422
    )

    # Consent withdrawn upstream: /refresh swaps in a new snapshot, the confirmed contacts stay.
    write_world(base, [customer_row("C1", optout_sms=True)], [], [("C1", 0, "CROSS_SELLING", "SMS")])
    assert client.post("/refresh").status_code == 200
    after = client.post("/check", json={**body, "channel": "DEM", "date": "2027-03-12"}).json()
    assert after["allowed"] is True, after
    codes = [r["code"] for r in client.post("/check", json=body).json()["reasons"]]
    assert codes == ["CHANNEL_OPT_OUT", "POLICY_MAX_OFFERS"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "jobs/realtime.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_exit_codes_and_json(base: Path) -> None:
    common = ["--base-path", str(base), "--run-id", RUN_ID]
    contact = ["--customer-id", "C1", "--campaign", "CROSS_SELLING", "--channel", "DEM", "--date", JAN]
    allowed = run("check", *common, *contact)
    assert allowed.returncode == 0, allowed.stderr
    decision = json.loads(allowed.stdout)
    assert decision["allowed"] is True and decision["contact"] == "m***@example.org"

    refused = run("check", *common, *contact[:1], "C2", *contact[2:])
    assert refused.returncode == 1 and json.loads(refused.stdout)["allowed"] is False

    recorded = run("confirm", *common, *contact, "--check-id", decision["check_id"])
    assert recorded.returncode == 0, recorded.stderr
    assert json.loads(recorded.stdout)["recorded"] is True
    # Default policy: one DEM per month; the second one is refused and not recorded.
    second = run("confirm", *common, *contact)
    assert second.returncode == 1
    assert json.loads(second.stdout)["decision"]["allowed"] is False
    assert CONTACT["DEM"] not in recorded.stdout + recorded.stderr + second.stdout + second.stderr

    missing = run("check", "--base-path", str(base / "nowhere"), "--run-id", RUN_ID, *contact)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: table 'customers' not found at {base / 'nowhere'}/customers"
    ]
    assert run("check", *common, *contact[:-1], "12/01/2027").returncode == 2
    bad_run = run("check", *common, "--run-id", "bad run", *contact)
    assert bad_run.returncode == 2 and "run_id 'bad run' is not valid" in bad_run.stderr
