"""Open an HTML page in headless Chromium (Debian's ``chromium``; ``make chromium`` installs it)
and return the DOM after its scripts ran, with the page's script errors collected."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ERROR_COLLECTOR = (
    "<script>window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message))});"
    "window.addEventListener('load',function(){setTimeout(function(){document.body.setAttribute("
    "'data-errors',window.__errors.join('|')||'none')},500)});</script>"
)


def rendered_dom(page: str, tmp_path: Path) -> str:
    """The DOM of ``page`` once Chromium ran it; ``<body data-errors="...">`` lists the script
    errors (``none`` when there were none)."""
    assert CHROMIUM is not None, "chromium is not installed (make chromium)"
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", "<head>" + ERROR_COLLECTOR, 1), encoding="utf-8")
    profile = tmp_path / "profile"
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout


def assert_renders(page: str, tmp_path: Path) -> int:
    """``page`` runs without a script error and every Plotly chart in it is drawn (its div holds
    the SVG plotly renders); returns the number of charts."""
    expected_charts = len(re.findall(r'class="plotly-graph-div"', page))
    dom = rendered_dom(page, tmp_path)
    assert 'data-errors="none"' in dom, re.findall(r'data-errors="[^"]*"', dom) or dom[-500:]
    rendered = re.findall(r'<div id="chart-\d+" class="[^"]*js-plotly-plot', dom)
    assert len(rendered) == expected_charts
    assert dom.count('class="main-svg"') >= expected_charts
    return expected_charts
