"""Reading Delta tables without Spark for the real-time service: delta-rs into Arrow, per customer.

The snapshot (:mod:`contact_spark.realtime.snapshot`) and the contact profiles
(:mod:`contact_spark.realtime.contacts`) both read their tables through these helpers, and
find a customer's rows with :class:`CustomerRows` (a binary search over the sorted ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contact_spark.config.models import AppConfig
from contact_spark.realtime.models import SnapshotError


def base_location(config: AppConfig, base_path: str | None = None) -> str:
    """Where the Delta tables are: ``base_path`` or ``storage.base_path`` (paths only, no catalog)."""
    if base_path is None and config.storage.catalog:
        raise SnapshotError(
            "the real-time snapshot reads Delta paths, not catalog tables: pass the tables' base path"
        )
    base = base_path or config.storage.base_path
    if "://" in base:
        return base.rstrip("/")
    # Resolved like the delta-rs backend of TableStore, so both name the same directories.
    return str(Path(base).expanduser().resolve())


def table_location(base: str, table: str) -> str:
    return f"{base}/{table}" if "://" in base else str(Path(base) / table)


def open_table(base: str, table: str, required: bool = True) -> Any:
    """The delta-rs table ``base/table``; when it does not exist, None or (``required``) an error."""
    from deltalake import DeltaTable

    path = table_location(base, table)
    if not DeltaTable.is_deltatable(path):
        if required:
            raise SnapshotError(f"table '{table}' not found at {path}")
        return None
    return DeltaTable(path)


def read_table(
    table: Any, name: str, columns: Sequence[str], run_id: str | None = None, optional: Sequence[str] = ()
) -> pa.Table:
    """Read the needed columns (optional ones if present), one run's partition if ``run_id``."""
    present = set(table.schema().to_arrow().names)
    missing = [c for c in columns if c not in present]
    if missing:
        raise SnapshotError(f"table '{name}' is missing column '{missing[0]}'")
    wanted = [*columns, *[c for c in optional if c in present]]
    if run_id is None:
        return table.to_pyarrow_table(columns=wanted)
    # On a run_id partition column the filter prunes files: only the run's files are read.
    return table.to_pyarrow_table(columns=wanted, filters=[("run_id", "=", run_id)])


class CustomerRows:
    """A table sorted by customer_id with a binary-searchable array of the distinct ids."""

    def __init__(self, table: pa.Table) -> None:
        table = table.filter(pc.is_valid(table["customer_id"]))
        self.table = table.sort_by("customer_id").combine_chunks() if table.num_rows else table
        if self.table.num_rows:
            runs = pc.run_end_encode(self.table["customer_id"].chunk(0))
            ends = runs.run_ends.to_numpy()
            self.ids = np.asarray(runs.values.to_pylist(), dtype=str)
            self.starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
            self.ends = ends.astype(np.int64)
        else:
            self.ids = np.asarray([], dtype=str)
            self.starts = self.ends = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's rows as dicts (empty when unknown)."""
        i = int(np.searchsorted(self.ids, customer_id))
        if i >= len(self.ids) or self.ids[i] != customer_id:
            return []
        start, end = int(self.starts[i]), int(self.ends[i])
        return self.table.slice(start, end - start).to_pylist()
