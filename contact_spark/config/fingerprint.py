"""A stable fingerprint of a configuration (run ids and recorded iterations are keyed by it)."""

from __future__ import annotations

import hashlib
import json

from contact_spark.config.models import AppConfig


def config_hash(config: AppConfig) -> str:
    """A stable fingerprint of the configuration (the storage location excluded).

    The export settings are left out too: they change how a plan is handed to execution
    systems, not what is planned, so a send window added after planning keeps the run id.
    So are the optional stages (``stages``): they explain a plan, they do not change it.
    """
    data = config.model_dump(mode="json", exclude={"storage", "export", "stages"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
