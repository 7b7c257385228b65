"""The export's files: one CSV and one Parquet file per channel × month, a manifest, and
the swap that replaces a month's folder whole.

Written on the driver from rows Spark streams in order (``toLocalIterator``: one partition
in memory at a time), so each list is one file in the order it must be worked, not a
folder of part files. Same rows in → same bytes out: no timestamp in any file (Parquet
records none) and floats written as Python's shortest round-trip text.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# One exported row, in file column order. The contact is the real address or number:
# these files are for execution systems, the one place it appears outside the tables.
FILE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("priority", pa.int64()),  # 1 = work first: expected value, descending
    ("customer_id", pa.string()),
    ("contact", pa.string()),
    ("contact_kind", pa.string()),
    ("contact_id", pa.string()),
    ("channel", pa.string()),
    ("campaign", pa.string()),
    ("campaign_description", pa.string()),
    ("campaign_family", pa.string()),
    ("success_value", pa.float64()),
    ("expected_value", pa.float64()),
    ("month", pa.date32()),
    ("send_from", pa.date32()),
    ("send_to", pa.date32()),
    ("run_id", pa.string()),
)
FILE_SCHEMA = pa.schema([pa.field(name, kind) for name, kind in FILE_COLUMNS])
BATCH_ROWS = 50_000  # rows buffered per file before they are written
MANIFEST = "manifest.json"


def file_stem(channel: str, month: dt.date) -> str:
    return f"{channel}_{month:%Y-%m}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same double
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@dataclass
class ListWriter:
    """The CSV and Parquet files of one channel × month, written batch by batch."""

    folder: Path
    channel: str
    month: dt.date
    rows: int = 0
    _buffer: list[tuple[Any, ...]] = field(default_factory=list)
    _csv: io.TextIOWrapper | None = None
    _parquet: pq.ParquetWriter | None = None

    @property
    def csv_path(self) -> Path:
        return self.folder / f"{file_stem(self.channel, self.month)}.csv"

    @property
    def parquet_path(self) -> Path:
        return self.folder / f"{file_stem(self.channel, self.month)}.parquet"

    def open(self) -> ListWriter:
        self._csv = self.csv_path.open("w", encoding="utf-8", newline="")
        # RFC 4180 (CRLF line ends, minimal quoting): what e-mail, SMS and dialler imports expect.
        csv.writer(self._csv).writerow([name for name, _ in FILE_COLUMNS])
        # Snappy: the codec every Parquet reader of an execution system knows.
        self._parquet = pq.ParquetWriter(self.parquet_path, FILE_SCHEMA, compression="snappy")
        return self

    def add(self, row: tuple[Any, ...]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        assert self._csv is not None and self._parquet is not None
        csv.writer(self._csv).writerows([[_csv_text(v) for v in row] for row in self._buffer])
        columns = list(zip(*self._buffer, strict=True))
        self._parquet.write_table(
            pa.table(
                [
                    pa.array(list(values), type=kind)
                    for values, (_, kind) in zip(columns, FILE_COLUMNS, strict=True)
                ],
                schema=FILE_SCHEMA,
            )
        )
        self.rows += len(self._buffer)
        self._buffer.clear()

    def close(self) -> list[dict[str, Any]]:
        """Flush, close, sync; the manifest entries of the two files."""
        self._flush()
        assert self._csv is not None and self._parquet is not None
        self._csv.flush()
        os.fsync(self._csv.fileno())
        self._csv.close()
        self._parquet.close()
        return [
            {
                "name": path.name,
                "channel": self.channel,
                "format": kind,
                "rows": self.rows,
                "bytes": path.stat().st_size,
                "sha256": sha256_of(path),
            }
            for kind, path in (("csv", self.csv_path), ("parquet", self.parquet_path))
        ]


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """The manifest, written last: a folder with one is complete."""
    path = folder / MANIFEST
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path


def staging_folder(run_folder: Path, month: dt.date) -> Path:
    """A fresh hidden folder next to the month's folder (same file system: renames are atomic)."""
    path = run_folder / f".{month:%Y-%m}.tmp-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    return path


def remove_leftovers(run_folder: Path, months: Iterable[dt.date]) -> None:
    """Remove staging and replaced folders of ``months`` that a crashed export left behind
    (the job holds the run's lock: no other export of the run is writing them)."""
    if not run_folder.is_dir():
        return
    prefixes = tuple(f".{month:%Y-%m}." for month in months)
    for path in run_folder.iterdir():
        if path.is_dir() and path.name.startswith(prefixes):
            shutil.rmtree(path, ignore_errors=True)


def swap_in(staged: Path, target: Path) -> None:
    """Replace ``target`` (a month's folder) by the complete ``staged`` folder.

    Two renames: the old folder aside, the new one in. A reader sees the old folder or the
    new one whole, never a mix; only between the two renames is there no folder (a crash
    there leaves the complete new folder staged, and the next export writes it again).
    """
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:12]}")
    if target.exists():
        os.rename(target, old)
    os.rename(staged, target)
    shutil.rmtree(old, ignore_errors=True)
