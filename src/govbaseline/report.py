"""Turn check results into report.json and report.html (junit.xml comes from pytest itself)."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from govbaseline.catalogue import load_catalogue

# Worst first. A control takes the worst status of its checks, except that a check skipped as not
# applicable here (e.g. no vendor accounts declared) does not outweigh checks that passed: such a
# control passes, and the report keeps each skipped check with its reason.
SEVERITY = ("error", "fail", "skipped", "pass")


def control_status(statuses: list[str]) -> str:
    judged = [s for s in statuses if s != "skipped"]
    return min(judged, key=SEVERITY.index) if judged else "skipped"


def build(results: list[dict[str, Any]], hosts: list[str], inventory: str = "") -> dict[str, Any]:
    catalogue = load_catalogue()
    data: dict[str, Any] = {
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inventory": inventory,
        "hosts": {h: {"controls": {}} for h in hosts},
    }
    for result in results:
        host = data["hosts"].setdefault(result["host"], {"controls": {}})
        for control_id in result["controls"]:
            control = host["controls"].setdefault(control_id, {
                "title": catalogue.get(control_id).title if catalogue.has(control_id) else "",
                "status": "pass", "checks": []})
            control["checks"].append({k: result[k] for k in ("check", "status", "message", "duration", "evidence")})
            control["status"] = control_status([c["status"] for c in control["checks"]])
    counts: dict[str, int] = {}
    for host in data["hosts"].values():
        host_counts: dict[str, int] = {}
        for control in host["controls"].values():
            host_counts[control["status"]] = host_counts.get(control["status"], 0) + 1
            counts[control["status"]] = counts.get(control["status"], 0) + 1
        judged = sum(host_counts.get(k, 0) for k in ("pass", "fail", "error"))
        host["summary"] = {"controls": host_counts,
                           "score": round(100 * host_counts.get("pass", 0) / judged) if judged else None}
    data["summary"] = {
        "hosts": len(data["hosts"]),
        "controls": counts,
        "passed": bool(results) and not counts.get("fail") and not counts.get("error"),
    }
    return data


def write(data: dict[str, Any], report_dir: Path) -> None:
    (report_dir / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    (report_dir / "report.html").write_text(render_html(data))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_html(data: dict[str, Any]) -> str:
    """A self-contained page; every value from a host is escaped, so evidence cannot inject markup."""
    summary = data["summary"]
    rows = []
    for host_name, host in sorted(data["hosts"].items()):
        rows.append(f"<h2>{_e(host_name)} <small>score {_e(host['summary']['score'])}%</small></h2>")
        rows.append("<table><tr><th>Control</th><th>Title</th><th>Status</th><th>Checks and evidence</th></tr>")
        for control_id, control in sorted(host["controls"].items()):
            checks = []
            for check in control["checks"]:
                evidence = "".join(
                    f"<details><summary><code>{_e(ev['command'])}</code> (exit {_e(ev['rc'])}, {_e(ev['time'])})"
                    f"</summary><pre>{_e(ev['stdout'])}{_e(ev['stderr'])}</pre></details>"
                    for ev in check["evidence"])
                message = f"<div class='msg'>{_e(check['message'])}</div>" if check["message"] else ""
                checks.append(f"<div><span class='{_e(check['status'])}'>{_e(check['status'])}</span> "
                              f"<code>{_e(check['check'])}</code>{message}{evidence}</div>")
            status = _e(control["status"])
            rows.append(f"<tr><td>{_e(control_id)}</td><td>{_e(control['title'])}</td>"
                        f"<td class='{status}'>{status}</td><td>{''.join(checks)}</td></tr>")
        rows.append("</table>")
    counts = ", ".join(f"{_e(n)} {_e(k)}" for k, n in sorted(summary["controls"].items()))
    verdict = "PASS" if summary["passed"] else "FAIL"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>govbaseline report</title>
<style>
body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}}
.pass{{color:#176b2c;font-weight:bold}} .fail,.error{{color:#a00;font-weight:bold}} .skipped{{color:#777}}
pre{{white-space:pre-wrap;max-height:20em;overflow:auto;background:#f6f6f6}} .msg{{color:#a00}}
</style></head><body>
<h1>govbaseline verification report: {verdict}</h1>
<p>Generated {_e(data['generated'])} from inventory <code>{_e(data['inventory'])}</code>:
{_e(summary['hosts'])} hosts; controls {counts}.</p>
{''.join(rows)}
</body></html>
"""
