"""Write propensities.parquet, the example CRM's scores (run once; the file is committed).

python conf/examples/crm_export/make_propensities.py
The same rows every time (no randomness): one score per customer C001..C025, campaign and
channel, plus four deliberately bad rows the import quarantines: a score above 1, a
customer scored twice with different scores, a row exported twice, a row without customer.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CAMPAIGNS = ("CROSS_SELLING", "SOLUTION")
CHANNELS = ("DEM", "SMS", "TLS")


def rows() -> list[tuple[str | None, str, str, float]]:
    """(CUST_ID, CAMPAIGN, CHANNEL, SCORE), in the file's order."""
    out: list[tuple[str | None, str, str, float]] = []
    for i in range(1, 26):
        for c, campaign in enumerate(CAMPAIGNS):
            for k, channel in enumerate(CHANNELS):
                score = round(0.02 + ((i * 7 + c * 13 + k * 5) % 40) / 100, 2)
                out.append((f"C{i:03d}", campaign, channel, score))
    # C003 × SOLUTION × SMS scored above 1 (a percentage exported as a fraction, say).
    index = out.index(next(r for r in out if r[:3] == ("C003", "SOLUTION", "SMS")))
    out[index] = ("C003", "SOLUTION", "SMS", 1.2)
    out.append(("C001", "SOLUTION", "TLS", 0.55))  # C001 × SOLUTION × TLS scored twice, differently
    out.append(out[6])  # C002 × CROSS_SELLING × DEM exported twice, identical
    out.append((None, "CROSS_SELLING", "SMS", 0.3))  # no customer
    return out


def table() -> pa.Table:
    cust, campaign, channel, score = zip(*rows(), strict=True)
    return pa.table(
        {
            "CUST_ID": pa.array(cust, pa.string()),
            "CAMPAIGN": pa.array(campaign, pa.string()),
            "CHANNEL": pa.array(channel, pa.string()),
            "SCORE": pa.array(score, pa.float64()),
        }
    )


if __name__ == "__main__":
    pq.write_table(table(), HERE / "propensities.parquet")
    print(f"wrote {table().num_rows} rows to {HERE / 'propensities.parquet'}")
