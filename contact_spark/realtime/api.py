"""A small HTTP endpoint over one snapshot: ``GET /health``, ``POST /check``, ``POST /confirm``,
``GET /customers/{customer_id}/contacts``.

Needs the ``serve`` extra (FastAPI, uvicorn). Bad input is a 4xx JSON error
``{"error": "<one line>"}``; a refused confirm is ``409`` with the decision; a customer the
run did not rank is ``404``, a run without its contact tables ``400``. The
:class:`~contact_spark.realtime.holder.SnapshotHolder` swaps in a reloaded snapshot when
the tables change (``POST /refresh``, or periodically: ``jobs/realtime.py serve --refresh-seconds``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contact_spark.realtime.check import check
from contact_spark.realtime.contacts import ContactProfile, contact_profile
from contact_spark.realtime.holder import SnapshotHolder
from contact_spark.realtime.models import (
    Confirmation,
    ContactRefusedError,
    Decision,
    RealtimeError,
    UnknownCustomerError,
)


class CheckRequest(BaseModel):
    """A contact to check; ``date`` defaults to today (UTC)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=256)
    campaign: str = Field(min_length=1, max_length=128)
    channel: str = Field(min_length=1, max_length=128)
    date: dt.date | None = None


class ConfirmRequest(CheckRequest):
    """A contact made: ``check_id`` of the check that allowed it, ``force`` to record a refused one."""

    check_id: str | None = Field(None, min_length=1, max_length=128)
    force: bool = False


class Health(BaseModel):
    status: str
    run_id: str
    customers: int
    loaded_at: dt.datetime
    versions: dict[str, int | None]


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def _first_error(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    err = errors[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
    return f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid request"))


def create_app(holder: SnapshotHolder) -> FastAPI:
    """The FastAPI application answering from ``holder.snapshot``."""
    app = FastAPI(title="contact_spark real-time check", version="1")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": _first_error(exc)})

    @app.exception_handler(RealtimeError)
    async def _realtime(_: Request, exc: RealtimeError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"error": str(exc)})

    @app.exception_handler(UnknownCustomerError)
    async def _unknown(_: Request, exc: UnknownCustomerError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"error": str(exc)})

    @app.get("/health")
    def health() -> Health:
        snap = holder.snapshot
        return Health(
            status="ok",
            run_id=snap.run_id,
            customers=snap.customer_count,
            loaded_at=snap.loaded_at,
            versions=snap.versions,
        )

    @app.post("/check")
    def post_check(body: CheckRequest) -> Decision:
        return check(holder.snapshot, body.customer_id, body.campaign, body.channel, body.date or _today())

    @app.post("/confirm", response_model=None)
    def post_confirm(body: ConfirmRequest) -> Confirmation | JSONResponse:
        try:
            return holder.confirm(
                body.customer_id,
                body.campaign,
                body.channel,
                body.date or _today(),
                check_id=body.check_id,
                force=body.force,
            )
        except ContactRefusedError as exc:
            content: dict[str, Any] = {"error": str(exc), "decision": exc.decision.model_dump(mode="json")}
            return JSONResponse(status_code=409, content=content)

    @app.get("/customers/{customer_id}/contacts")
    def get_contacts(customer_id: str = Path(min_length=1, max_length=256)) -> ContactProfile:
        return contact_profile(holder.snapshot, customer_id)

    @app.post("/refresh")
    def post_refresh() -> Health:
        holder.refresh()
        return health()

    return app
