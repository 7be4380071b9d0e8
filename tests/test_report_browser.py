"""report.html in a real browser: headless Debian chromium loads it from disk and a probe
script checks that every image decoded (naturalWidth > 0) and nothing logged an error.

The probe is added to a copy of the page (the report itself carries no script, and its CSP
would block one): it records console.error calls, error events (including failed resource
loads) and CSP violations, then writes its findings into the DOM, which --dump-dom prints.
A control page with a broken image and a console error proves the probe can fail.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import pytest

from oversight import Critic, Panel
from oversight.report import Analysis, write_report
from oversight.report._html import CSP

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium (apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=10000"]

PROBE = """<script>
window.__errors = [];
const __ce = console.error.bind(console);
console.error = (...a) => { window.__errors.push("console.error: " + a.join(" ")); __ce(...a); };
window.addEventListener("error", e => window.__errors.push("error: " + (e.message ||
  (e.target && (e.target.src || e.target.href || e.target.tagName)) || "?")), true);
document.addEventListener("securitypolicyviolation",
  e => window.__errors.push("csp: " + e.violatedDirective + " " + e.blockedURI));
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const out = {n: imgs.length, errors: window.__errors,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    widths: imgs.map(i => i.naturalWidth)};
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _probe(page: Path, tmp_path: Path) -> dict:
    source = page.read_text()
    assert CSP in source
    probed = source.replace(CSP, CSP + "; script-src 'unsafe-inline'").replace(
        "<head>", "<head>" + PROBE, 1)
    target = tmp_path / f"probe-{page.name}"
    target.write_text(probed)
    proc = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--enable-logging=stderr", "--dump-dom", target.as_uri()],
                          capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"no probe output; chromium stderr tail:\n{proc.stderr[-2000:]}"
    result = json.loads(html.unescape(match.group(1)))
    result["uncaught"] = [ln for ln in proc.stderr.splitlines() if "Uncaught" in ln]
    return result


def test_report_renders_in_chromium(tmp_path, scripted_backend, pairs, harmlessness):
    panel = Panel([Critic(harmlessness, scripted_backend, name=n, principles=2, seed=s)
                   for s, n in enumerate(("cautious", "eager", "third"))])
    result = panel.judge(pairs)
    page = write_report(Analysis.from_result(result, n_boot=20), tmp_path / "report.html")
    found = _probe(page, tmp_path)
    assert found["n"] == page.read_text().count("<img ") >= 9
    assert found["broken"] == [] and min(found["widths"]) > 0
    assert found["errors"] == [] and found["uncaught"] == []

    control = tmp_path / "control.html"
    control.write_text(page.read_text().replace(
        "</body>", '<img alt="broken" src="data:image/png;base64,AAAA">'
        "<style>@import url(https://example.invalid/x.css);</style></body>"))
    bad = _probe(control, tmp_path)
    assert bad["broken"] == ["broken"]
    assert any(e.startswith("error") for e in bad["errors"])
    assert any(e.startswith("csp") for e in bad["errors"])  # the CSP blocks the fetch
