"""Turn check results into the evidence of a verification run.

``report.json`` (its shape is ``report.schema.json``), ``report.html`` for an auditor, ``junit.xml``
(written by pytest itself) and one evidence bundle: a tar archive of all three with a SHA-256
manifest, so anyone holding the bundle's own hash can tell that nothing was edited after the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from govbaseline.catalogue import Catalogue, load_catalogue
from govbaseline.waivers import Waiver
from govbaseline.waivers import waived as waived_on

SCHEMA_FILE = Path(__file__).with_name("report.schema.json")
SCHEMA_VERSION = 1

# Worst first. A control takes the worst status of its checks, except that a check skipped as not
# applicable here (e.g. no vendor accounts declared) does not outweigh checks that passed: such a
# control passes, and the report keeps each skipped check with its reason.
SEVERITY = ("error", "fail", "waived", "switched off", "skipped", "pass")
# How a check of a role switched off on its host (``<role>_enabled: false``) is skipped. Such a control
# is not applicable on that host, but it is no answer to its clauses either: across the fleet it is
# "switched off", and a clause it answers is at best "partly" answered.
SWITCHED_OFF = "switched off: "

# How a policy clause stands across the fleet, from the controls that answer it.
ANSWERED, PARTLY, NOT_ANSWERED = "answered", "partly", "not answered"
NOT_CHECKED, NOT_A_SERVER_MATTER = "not checked", "not a server matter"

EVIDENCE_FILES = ("report.json", "report.html", "junit.xml")
MANIFEST = "MANIFEST.sha256"
BUNDLE = "evidence.tar.gz"


def control_status(statuses: list[str]) -> str:
    judged = [s for s in statuses if s != "skipped"]
    return min(judged, key=SEVERITY.index) if judged else "skipped"


def build(results: list[dict[str, Any]], hosts: list[str], inventory: str = "",
          unreachable: dict[str, str] | None = None, previous: dict[str, Any] | None = None,
          waivers: list[Waiver] | None = None, groups: dict[str, list[str]] | None = None,
          today: dt.date | None = None, pulls: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The report data. ``unreachable`` maps a host that could not be checked to why; ``previous``
    is the last run's report.json, for drift; a control under a waiver active ``today`` on a host
    (by name or by one of its ``groups``) is ``waived`` there, its checks kept as evidence.
    ``pulls``: for a report gathered from hosts in pull mode, each host's run (when, which commit,
    how ansible-pull ended); a host whose ansible-pull failed fails the report."""
    catalogue = load_catalogue()
    unreachable = unreachable or {}
    waivers, groups, today = waivers or [], groups or {}, today or dt.date.today()
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "inventory": inventory,
        "hosts": {h: {"reachable": h not in unreachable, "controls": {}} for h in hosts},
    }
    for host_name, why in unreachable.items():
        data["hosts"][host_name]["error"] = why
    pulls = pulls or {}
    for host_name, pull in pulls.items():
        data["hosts"][host_name]["pull"] = pull
    for result in results:
        host = data["hosts"].setdefault(result["host"], {"reachable": True, "controls": {}})
        for control_id in result["controls"]:
            control = host["controls"].setdefault(control_id, {
                "title": catalogue.get(control_id).title if catalogue.has(control_id) else "",
                "status": "pass", "checks": []})
            control["checks"].append({k: result[k] for k in ("check", "status", "message", "duration", "evidence")})
            control["status"] = control_status([c["status"] for c in control["checks"]])
    for host_name, host in data["hosts"].items():
        for control_id, waiver in waived_on(waivers, host_name, groups.get(host_name, []), today).items():
            if control_id in host["controls"]:
                host["controls"][control_id]["status"] = "waived"
                host["controls"][control_id]["waiver"] = waiver.as_dict(today)
    counts: dict[str, int] = {}
    for host in data["hosts"].values():
        host_counts: dict[str, int] = {}
        for control in host["controls"].values():
            host_counts[control["status"]] = host_counts.get(control["status"], 0) + 1
            counts[control["status"]] = counts.get(control["status"], 0) + 1
        judged = sum(host_counts.get(k, 0) for k in ("pass", "fail", "error"))
        host["summary"] = {"controls": host_counts,
                           "score": round(100 * host_counts.get("pass", 0) / judged) if judged else None}
    data["waivers"] = [w.as_dict(today) for w in waivers]
    data["policies"] = policy_summary(catalogue, data["hosts"])
    data["drift"] = drift(previous, data)
    data["summary"] = {
        "hosts": len(data["hosts"]),
        "unreachable": sorted(unreachable),
        "controls": counts,
        "passed": bool(results) and not unreachable and not counts.get("fail") and not counts.get("error")
        and not any(p["apply_returncode"] for p in pulls.values()),
    }
    return data


def _fleet_status(hosts: dict[str, Any], control_id: str) -> str | None:
    """A control's worst status over the hosts that checked it (``switched off`` on a host where its
    role is off); None where no host did."""
    seen = [_host_status(h["controls"][control_id]) for h in hosts.values() if control_id in h["controls"]]
    return min(seen, key=SEVERITY.index) if seen else None


def _host_status(control: dict[str, Any]) -> str:
    checks = control.get("checks") or []
    # pytest words a skip's reason "Skipped: <reason>".
    if control["status"] == "skipped" and checks and \
            all(str(c.get("message", "")).removeprefix("Skipped: ").startswith(SWITCHED_OFF) for c in checks):
        return "switched off"
    return str(control["status"])


def policy_summary(catalogue: Catalogue, hosts: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per policy, per clause: answered (every control behind it was checked and passes on every
    host that checked it), partly (some do; others fail, are not built yet or were not checked in
    this run), not answered (none passes), not checked (this run checked none of its controls), or
    not a server matter (with the reason)."""
    policies: dict[str, list[dict[str, Any]]] = {}
    for clause in catalogue.clauses:
        entry: dict[str, Any] = {"clause": clause.id, "quote": clause.quote, "controls": {}}
        if not clause.server:
            entry.update(status=NOT_A_SERVER_MATTER, why=clause.why)
        else:
            answering = catalogue.answering(clause.id)
            statuses = {c.id: (_fleet_status(hosts, c.id) if c.status == "implemented" else "planned")
                        for c in answering}
            entry["controls"] = {cid: status or "not checked" for cid, status in statuses.items()}
            # A control not applicable on any host checked (skipped) neither answers nor fails it.
            relevant = [s for s in statuses.values() if s != "skipped"]
            passed = sum(s == "pass" for s in relevant)
            if all(s is None for s in relevant):
                entry["status"] = NOT_CHECKED
            elif passed == len(relevant):
                entry["status"] = ANSWERED
            else:
                entry["status"] = PARTLY if passed else NOT_ANSWERED
        policies.setdefault(clause.policy, []).append(entry)
    return policies


def drift(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """What changed since the previous run: every (host, control) whose status differs, and hosts
    that appeared or disappeared."""
    if not previous or "hosts" not in previous:
        return {"previous": None, "changes": []}
    changes = []
    before_hosts, after_hosts = previous["hosts"], current["hosts"]
    for host_name in sorted(set(before_hosts) | set(after_hosts)):
        before = before_hosts.get(host_name, {}).get("controls", {})
        after = after_hosts.get(host_name, {}).get("controls", {})
        for control_id in sorted(set(before) | set(after)):
            was = before[control_id]["status"] if control_id in before else "absent"
            now = after[control_id]["status"] if control_id in after else "absent"
            if was != now:
                changes.append({"host": host_name, "control": control_id, "before": was, "after": now})
    return {"previous": previous.get("generated"), "changes": changes}


def load_previous(report_dir: Path) -> dict[str, Any] | None:
    """The last run's report.json in this folder, if there is a readable one."""
    try:
        data = json.loads((report_dir / "report.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write(data: dict[str, Any], report_dir: Path) -> str:
    """Write report.json and report.html, then the evidence bundle; return the bundle's SHA-256."""
    (report_dir / "report.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    (report_dir / "report.html").write_text(render_html(data))
    return write_bundle(report_dir, data["generated"])


def write_bundle(report_dir: Path, generated: str) -> str:
    """MANIFEST.sha256 (``sha256sum -c`` reads it) and evidence.tar.gz holding the evidence files
    and the manifest; the bundle's own hash goes to evidence.tar.gz.sha256 and is returned, for the
    auditor to record apart from the files."""
    files = {name: (report_dir / name).read_bytes() for name in EVIDENCE_FILES if (report_dir / name).exists()}
    manifest = "".join(f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in files.items())
    (report_dir / MANIFEST).write_text(manifest)
    files[MANIFEST] = manifest.encode()
    mtime = dt.datetime.strptime(generated, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    buffer = io.BytesIO()
    # Fixed owner, mode and time: the same evidence always makes the same archive.
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uname, info.gname = len(content), int(mtime), 0o644, "", ""
            tar.addfile(info, io.BytesIO(content))
    (report_dir / BUNDLE).write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    (report_dir / f"{BUNDLE}.sha256").write_text(f"{digest}  {BUNDLE}\n")
    return digest


def verify_bundle(bundle: Path) -> list[str]:
    """Problems found in a bundle: a file whose hash differs from the manifest, or is missing."""
    problems = []
    with tarfile.open(bundle) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    if MANIFEST not in files:
        return [f"{MANIFEST} is missing"]
    for line in files[MANIFEST].decode().splitlines():
        digest, _, name = line.partition("  ")
        if name not in files:
            problems.append(f"{name} is missing")
        elif hashlib.sha256(files[name]).hexdigest() != digest:
            problems.append(f"{name} does not match its SHA-256 in the manifest")
    return problems


# -- HTML ----------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _status(value: str) -> str:
    return f"<span class='s-{_e(value.replace(' ', '-'))}'>{_e(value)}</span>"


CSS = """
body{font-family:sans-serif;margin:2em;max-width:90em} table{border-collapse:collapse;width:100%;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}
.s-pass,.s-answered{color:#176b2c;font-weight:bold}
.s-fail,.s-error,.s-not-answered,.s-unreachable{color:#a00;font-weight:bold}
.s-partly,.s-waived,.s-switched-off,.s-expiring-soon,.s-expired{color:#a60;font-weight:bold}
.s-skipped,.s-not-checked,.s-not-a-server-matter,.s-planned{color:#666}
pre{white-space:pre-wrap;max-height:20em;overflow:auto;background:#f6f6f6} .msg{color:#a00}
nav a{margin-right:1em} .quote{font-style:italic}
"""


def _policies_html(policies: dict[str, list[dict[str, Any]]]) -> str:
    parts = ["<h2 id='policies'>Policies and clauses</h2>"]
    for policy, clauses in sorted(policies.items()):
        tally: dict[str, int] = {}
        for clause in clauses:
            tally[clause["status"]] = tally.get(clause["status"], 0) + 1
        counts = ", ".join(f"{n} {_e(k)}" for k, n in sorted(tally.items()))
        parts.append(f"<h3>{_e(policy)}</h3><p>{counts}</p>")
        parts.append("<table><tr><th>Clause</th><th>What the policy says</th><th>Status</th>"
                     "<th>Controls behind it</th></tr>")
        for clause in clauses:
            behind = ", ".join(f"{_e(cid)} {_status(s)}" for cid, s in sorted(clause["controls"].items()))
            if clause["status"] == NOT_A_SERVER_MATTER:
                behind = _e(clause.get("why", ""))
            parts.append(f"<tr><td><code>{_e(clause['clause'].split(':', 1)[1])}</code></td>"
                         f"<td class='quote'>{_e(clause['quote'])}</td><td>{_status(clause['status'])}</td>"
                         f"<td>{behind}</td></tr>")
        parts.append("</table>")
    return "".join(parts)


def _waivers_html(waivers: list[dict[str, Any]]) -> str:
    """Expired and soon-to-expire waivers first thing in the report: each is a decision due."""
    if not waivers:
        return ""
    due = sorted((w for w in waivers if w["state"] != "active"), key=lambda w: w["expires"])
    head = (f"<h2 id='waivers'>Waivers</h2><p>{len(waivers)} waivers; {len(due)} expired or ending within "
            "30 days.</p>")
    if not due:
        return head
    rows = "".join(
        f"<tr><td>{_status(w['state'])}</td><td>{_e(w['control'])}</td>"
        f"<td>{_e(', '.join(w['hosts'] + [f'group {g}' for g in w['groups']]))}</td><td>{_e(w['expires'])}</td>"
        f"<td>{_e(w['justification'])}</td><td>{_e(w['approver'])}</td><td><code>{_e(w['source'])}</code></td></tr>"
        for w in due)
    return head + ("<table><tr><th>State</th><th>Control</th><th>Scope</th><th>Expires</th><th>Justification</th>"
                   f"<th>Approver</th><th>Where</th></tr>{rows}</table>")


def _drift_html(drift_data: dict[str, Any]) -> str:
    if drift_data["previous"] is None:
        return "<h2 id='drift'>Changes since the previous run</h2><p>No previous run in this report folder.</p>"
    head = f"<h2 id='drift'>Changes since the previous run ({_e(drift_data['previous'])})</h2>"
    if not drift_data["changes"]:
        return head + "<p>None: every control has the status it had.</p>"
    rows = "".join(f"<tr><td>{_e(c['host'])}</td><td>{_e(c['control'])}</td><td>{_status(c['before'])}</td>"
                   f"<td>{_status(c['after'])}</td></tr>" for c in drift_data["changes"])
    return head + f"<table><tr><th>Host</th><th>Control</th><th>Before</th><th>Now</th></tr>{rows}</table>"


def _host_html(host_name: str, host: dict[str, Any]) -> str:
    anchor = "host-" + "".join(ch if ch.isalnum() else "-" for ch in host_name)
    if not host.get("reachable", True):
        return (f"<h2 id='{_e(anchor)}'>{_e(host_name)} {_status('unreachable')}</h2>"
                f"<p class='msg'>Not checked: {_e(host.get('error', ''))}</p>")
    rows = [f"<h2 id='{_e(anchor)}'>{_e(host_name)} <small>score {_e(host['summary']['score'])}%</small></h2>"]
    pull = host.get("pull")
    if pull:
        outcome = ("applied" if not pull["apply_returncode"]
                   else f"{_status('fail')} ansible-pull exited {_e(pull['apply_returncode'])}")
        log = (f"<details><summary>end of the ansible-pull log</summary><pre>{_e(pull['apply_log_tail'])}</pre>"
               "</details>" if pull["apply_returncode"] else "")
        rows.append(f"<p class='msg'>Pull mode: the host applied commit <code>{_e(pull['commit'] or 'none')}</code> "
                    f"and checked itself at {_e(pull['finished'])}: {outcome}.</p>{log}")
    rows += ["<table><tr><th>Control</th><th>Title</th><th>Status</th><th>Checks and evidence</th></tr>"]
    for control_id, control in sorted(host["controls"].items()):
        checks = []
        for check in control["checks"]:
            evidence = "".join(
                f"<details><summary><code>{_e(ev['command'])}</code> (exit {_e(ev['rc'])}, {_e(ev['time'])})"
                f"</summary><pre>{_e(ev['stdout'])}{_e(ev['stderr'])}</pre></details>"
                for ev in check["evidence"])
            message = f"<div class='msg'>{_e(check['message'])}</div>" if check["message"] else ""
            checks.append(f"<div>{_status(check['status'])} <code>{_e(check['check'])}</code>{message}{evidence}</div>")
        waiver = control.get("waiver")
        note = (f"<div class='msg'>waived until {_e(waiver['expires'])} by {_e(waiver['approver'])}: "
                f"{_e(waiver['justification'])}</div>" if waiver else "")
        rows.append(f"<tr><td>{_e(control_id)}</td><td>{_e(control['title'])}</td>"
                    f"<td>{_status(control['status'])}{note}</td><td>{''.join(checks)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def render_html(data: dict[str, Any]) -> str:
    """A self-contained page; every value from a host is escaped, so evidence cannot inject markup."""
    summary = data["summary"]
    counts = ", ".join(f"{_e(n)} {_e(k)}" for k, n in sorted(summary["controls"].items()))
    verdict = "PASS" if summary["passed"] else "FAIL"
    host_rows = "".join(
        f"<tr><td><a href='#host-{_e(''.join(ch if ch.isalnum() else '-' for ch in name))}'>{_e(name)}</a></td>"
        f"<td>{_status('reachable' if host.get('reachable', True) else 'unreachable')}</td>"
        f"<td>{_e(host['summary']['score'])}</td>"
        f"<td>{', '.join(f'{n} {_e(k)}' for k, n in sorted(host['summary']['controls'].items()))}</td></tr>"
        for name, host in sorted(data["hosts"].items()))
    unreachable = (f"<p class='msg'>Not checked (unreachable): {_e(', '.join(summary['unreachable']))}</p>"
                   if summary.get("unreachable") else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>govbaseline report</title>
<style>{CSS}</style></head><body>
<h1>govbaseline verification report: {verdict}</h1>
<p>Generated {_e(data['generated'])} from inventory <code>{_e(data['inventory'])}</code>:
{_e(summary['hosts'])} hosts; controls {counts}.</p>{unreachable}
{_waivers_html(data.get('waivers', []))}
<nav><a href='#policies'>Policies and clauses</a><a href='#drift'>Changes since the previous run</a>
<a href='#hosts'>Hosts</a></nav>
{_policies_html(data.get('policies', {}))}
{_drift_html(data.get('drift', {'previous': None, 'changes': []}))}
<h2 id='hosts'>Hosts</h2>
<table><tr><th>Host</th><th>Reached</th><th>Score (%)</th><th>Controls</th></tr>{host_rows}</table>
{''.join(_host_html(name, host) for name, host in sorted(data['hosts'].items()))}
</body></html>
"""
