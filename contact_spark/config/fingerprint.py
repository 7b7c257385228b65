"""A stable fingerprint of a configuration (run ids and recorded iterations are keyed by it)."""

from __future__ import annotations

import hashlib
import json

from contact_spark.config.models import AppConfig


def config_hash(config: AppConfig) -> str:
    """A stable fingerprint of the configuration (the storage location excluded)."""
    data = config.model_dump(mode="json", exclude={"storage"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
