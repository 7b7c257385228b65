"""Building blocks of the HTML report: the page style, escaped tables, inline Plotly charts."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#1f2933}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:1px solid #d9e2ec}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d9e2ec;padding:.3rem .6rem;text-align:right}
th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}.muted{color:#627d98}
.kpis{display:flex;flex-wrap:wrap;gap:1rem}.kpi{background:#f0f4f8;border-radius:8px;padding:.8rem 1.2rem;min-width:11rem}
.kpi b{display:block;font-size:1.4rem}.ok{color:#18794e}.bad{color:#c62828}.chart{min-height:420px}
td.text{text-align:left}
"""
SAMPLE_SIZE = 20
CHANNEL_COLOURS = ["#2f80ed", "#27ae60", "#eb5757", "#f2994a", "#9b51e0", "#56ccf2"]


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An escaped HTML table."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class='text'>{html.escape(_fmt(v))}</td>"
            if isinstance(v, str)
            else f"<td>{html.escape(_fmt(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


class Charts:
    """Plotly figures rendered as divs; the library itself is inlined once in the page."""

    def __init__(self, first_id: int = 0) -> None:
        self.count = first_id  # charts of two builders in one page need ids apart

    def div(self, fig: Any, height: int = 420) -> str:
        import plotly.io as pio

        self.count += 1
        fig.update_layout(height=height, margin={"l": 60, "r": 20, "t": 50, "b": 60}, template="plotly_white")
        return (
            "<div class='chart'>"
            + pio.to_html(
                fig,
                full_html=False,
                include_plotlyjs=False,
                div_id=f"chart-{self.count}",
                config={"displaylogo": False, "responsive": True},
            )
            + "</div>"
        )
