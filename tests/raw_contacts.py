"""The raw phones and e-mails of a lakehouse, and where they appear (the privacy scans' helper).

Issue 24, item 7: a raw contact may only be in the input tables it comes from, in
``contacts_clean`` and ``best_contacts`` (cleaning and choosing it), in ``plan`` (execution
reads it) and in the exports. Every other table names a contact by its key (``contact_id``),
and logs and reports show contacts masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

# Tables that may hold a raw contact: the inputs that carry one (as exported from the CRM,
# and the real-time confirmations that extend the history), the cleaned and best contacts,
# and the plan.
ALLOWED_TABLES = frozenset(
    {"contacts", "contact_history", "realtime_contacts", "contacts_clean", "best_contacts", "plan"}
)


def personal(values: Iterable[str | None]) -> list[str]:
    """The values that identify a person, stripped: an e-mail (any ``@``) or a phone number
    (4 distinct digits or more), 6 characters or longer. Placeholders such as ``n/a``,
    ``000 0000000`` or blanks are not personal data, and would match everywhere."""
    out = set()
    for value in values:
        text = (value or "").strip()
        if len(text) >= 6 and ("@" in text or len({ch for ch in text if ch.isdigit()}) >= 4):
            out.add(text)
    return sorted(out)


def leaked(text: str, values: Iterable[str]) -> list[str]:
    """The values found verbatim in ``text``."""
    return [value for value in values if value in text]


def delta_tables(base: Path) -> dict[str, Path]:
    """Every Delta table directly under ``base``: name → path."""
    return {p.name: p for p in sorted(base.iterdir()) if (p / "_delta_log").is_dir()}


def read_table(path: Path) -> pa.Table:
    """A whole Delta table (every run), read with delta-rs: no Spark job."""
    return DeltaTable(str(path)).to_pyarrow_table()


def raw_contacts(tables: Mapping[str, Path]) -> list[str]:
    """The personal values of the input ``contacts`` table, as entered and as normalised
    (``contacts_clean``: E.164 phones, lower-case addresses), which is how they are copied."""
    values = read_table(tables["contacts"]).column("value").to_pylist()
    values += read_table(tables["contacts_clean"]).column("value").to_pylist()
    return personal(values)


def column_texts(table: pa.Table) -> dict[str, str]:
    """Each column's values as one text (lists and structs as their Python text)."""
    return {name: "\n".join(map(str, table.column(name).to_pylist())) for name in table.column_names}
