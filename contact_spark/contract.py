"""The input contract: tables users load, their columns, types and meaning.

``docs/input_contract.md`` is generated from :data:`INPUT_TABLES` (``make docs``), so
the documentation and the checks cannot drift apart. Jobs call
:func:`validate_input` before any heavy work: a missing column or a wrong type
stops the job with an error naming the table and the column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from contact_spark.errors import ColumnTypeError, MissingColumnError

STRING = (T.StringType,)
BOOLEAN = (T.BooleanType,)
DATE = (T.DateType,)
TIMESTAMP_OR_DATE = (T.TimestampType, T.TimestampNTZType, T.DateType)
NUMBER = (
    T.DoubleType,
    T.FloatType,
    T.DecimalType,
    T.IntegerType,
    T.LongType,
    T.ShortType,
    T.ByteType,
)
INTEGER = (T.IntegerType, T.LongType, T.ShortType, T.ByteType)


@dataclass(frozen=True)
class ColumnSpec:
    """One column of an input table."""

    name: str
    types: tuple[type[T.DataType], ...]
    nullable: bool
    meaning: str
    required: bool = True
    # Inclusive range of a number column's values (the importer quarantines a value outside it).
    bounds: tuple[float, float] | None = None

    @property
    def type_names(self) -> str:
        return " or ".join(t.__name__.replace("Type", "").lower() for t in self.types)


@dataclass(frozen=True)
class TableSpec:
    """An input table: its columns and what one row is."""

    name: str
    row: str
    columns: tuple[ColumnSpec, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Columns whose values identify one row (none: rows may repeat, as past contacts may).
    key: tuple[str, ...] = ()

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


CUSTOMERS = TableSpec(
    name="customers",
    row="one customer",
    columns=(
        ColumnSpec("customer_id", STRING, False, "Unique customer key."),
        ColumnSpec("household_id", STRING, True, "Household key; customers sharing it live together."),
        ColumnSpec(
            "segment", STRING, True, "Strategic segment (e.g. MASS, VIP), usable in include/exclude rules."
        ),
        ColumnSpec(
            "churn_risk",
            BOOLEAN,
            True,
            "True when the customer is at risk of churn: no commercial contact. Null counts as at risk (fail-closed).",
        ),
        ColumnSpec(
            "outbound",
            BOOLEAN,
            True,
            "True when the customer is leaving (outbound): no commercial contact. Null counts as outbound (fail-closed).",
        ),
        ColumnSpec("privacy_consent", BOOLEAN, True, "Marketing (privacy) consent. Null means no consent."),
        ColumnSpec(
            "optout_dem", BOOLEAN, True, "Opt-out from e-mail (DEM). Null means opted out (fail-closed)."
        ),
        ColumnSpec("optout_sms", BOOLEAN, True, "Opt-out from SMS. Null means opted out (fail-closed)."),
        ColumnSpec(
            "optout_tls",
            BOOLEAN,
            True,
            "Opt-out from teleselling calls (TLS). Null means opted out (fail-closed).",
        ),
    ),
    notes=(
        "One opt-out column per configured channel, named optout_<channel in lower case>.",
        "Extra columns are kept and can be used in include/exclude rule predicates.",
    ),
    key=("customer_id",),
)

CONTACTS = TableSpec(
    name="contacts",
    row="one phone number or e-mail address of a customer, as entered in a source system",
    columns=(
        ColumnSpec("customer_id", STRING, False, "Customer the contact is recorded on."),
        ColumnSpec(
            "contact_type",
            STRING,
            True,
            "'phone' or 'email'; anything else is quarantined with a reason code.",
        ),
        ColumnSpec("value", STRING, True, "The number or address as entered (any format)."),
        ColumnSpec("source", STRING, True, "Source system (weights per source in config)."),
        ColumnSpec(
            "created_at", TIMESTAMP_OR_DATE, True, "When the contact was first recorded on this customer."
        ),
        ColumnSpec(
            "last_confirmed_at", TIMESTAMP_OR_DATE, True, "When the customer last confirmed the contact."
        ),
        ColumnSpec(
            "contact_id",
            STRING,
            True,
            "Optional key of the raw row; derived from the row when absent.",
            required=False,
        ),
    ),
    key=("contact_id",),
)

CONTACT_HISTORY = TableSpec(
    name="contact_history",
    row="one contact made to a customer in the past",
    columns=(
        ColumnSpec("customer_id", STRING, False, "Customer contacted."),
        ColumnSpec("contact_date", TIMESTAMP_OR_DATE, False, "Day of the contact."),
        ColumnSpec("campaign", STRING, False, "Campaign name as in the config (e.g. CROSS_SELLING)."),
        ColumnSpec("channel", STRING, False, "Channel name as in the config (DEM, SMS, TLS)."),
        ColumnSpec("contact", STRING, True, "Phone number or e-mail address used."),
        ColumnSpec("outcome", STRING, True, "converted, responded, no_response, not_reached or bounced."),
    ),
)

PROPENSITIES = TableSpec(
    name="propensities",
    row="the probability that a customer converts when contacted for a campaign through a channel",
    columns=(
        ColumnSpec("customer_id", STRING, False, "Customer."),
        ColumnSpec("campaign", STRING, False, "Campaign name as in the config."),
        ColumnSpec("channel", STRING, False, "Channel name as in the config."),
        ColumnSpec("propensity", NUMBER, False, "Probability of success in [0, 1].", bounds=(0.0, 1.0)),
    ),
    key=("customer_id", "campaign", "channel"),
)

EVENTS = TableSpec(
    name="events",
    row="something a customer did or that happened to them, which may trigger a campaign (optional table)",
    columns=(
        ColumnSpec("customer_id", STRING, True, "Customer; null is rejected with a reason code."),
        ColumnSpec("event_type", STRING, True, "Event type as in triggers.events (e.g. MOVE, COMPLAINT)."),
        ColumnSpec("event_time", TIMESTAMP_OR_DATE, True, "When it happened; its month starts the effect."),
        ColumnSpec(
            "attributes",
            (T.MapType, T.StringType),
            True,
            "Optional details (kept in the table, not used by the planner).",
            required=False,
        ),
    ),
    notes=(
        "Only needed for trigger runs (jobs/trigger.py); each event is applied once per plan run, "
        "matched on (customer_id, event_type, event_time).",
    ),
)

INPUT_TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (CUSTOMERS, CONTACTS, CONTACT_HISTORY, PROPENSITIES)
}


def customers_spec(channels: list[str]) -> TableSpec:
    """The customers contract for the configured channels (one opt-out column each)."""
    base = [c for c in CUSTOMERS.columns if not c.name.startswith("optout_")]
    optouts = [
        ColumnSpec(
            f"optout_{ch.lower()}",
            BOOLEAN,
            True,
            f"Opt-out from channel {ch}. Null means opted out (fail-closed).",
        )
        for ch in channels
    ]
    return TableSpec(CUSTOMERS.name, CUSTOMERS.row, tuple(base + optouts), CUSTOMERS.notes, CUSTOMERS.key)


def validate_input(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Check ``df`` against ``spec``: raise on the first missing column or wrong type.

    Only the schema is inspected; no Spark job runs. Returns ``df`` so the check can
    be chained with ``DataFrame.transform``.
    """
    fields = {f.name: f for f in df.schema.fields}
    for column in spec.columns:
        found = fields.get(column.name)
        if found is None:
            if column.required:
                raise MissingColumnError(spec.name, column.name, sorted(fields))
            continue
        if not isinstance(found.dataType, column.types):
            raise ColumnTypeError(spec.name, column.name, column.type_names, found.dataType.simpleString())
    return df


def contract_markdown(channels: list[str] | None = None) -> str:
    """The input contract as Markdown (docs/input_contract.md)."""
    lines = [
        "# Input contract",
        "",
        "Generated from `contact_spark/contract.py` by `make docs`; do not edit by hand.",
        "Jobs check these tables before any heavy work and stop with an error naming",
        "the table and the column on a missing column or a wrong type.",
        "",
    ]
    specs = dict(INPUT_TABLES)
    specs["events"] = EVENTS
    if channels:
        specs["customers"] = customers_spec(channels)
    for spec in specs.values():
        lines += [f"## `{spec.name}`", "", f"One row is {spec.row}.", ""]
        if spec.key:
            names = ", ".join(f"`{k}`" for k in spec.key)
            lines += [f"Key: {names} (one row per value; rows without a value are not keyed).", ""]
        lines += ["| column | type | nullable | required | meaning |", "|---|---|---|---|---|"]
        for c in spec.columns:
            lines.append(
                f"| `{c.name}` | {c.type_names} | {'yes' if c.nullable else 'no'} | "
                f"{'yes' if c.required else 'no'} | {c.meaning} |"
            )
        lines.append("")
        for note in spec.notes:
            lines.append(f"- {note}")
        if spec.notes:
            lines.append("")
    return "\n".join(lines)
