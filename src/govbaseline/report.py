"""Turn check results into the evidence of a verification run.

``report.json`` (its shape is ``report.schema.json``), ``report.html`` for an auditor, ``junit.xml``
(written by pytest itself) and one evidence bundle: a tar archive of all three with a SHA-256
manifest, so anyone holding the bundle's own hash can tell that nothing was edited after the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import shlex
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

from govbaseline import pages
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
# How the checks' progress lines start on their stderr (verify hands them on while the checks run).
PROGRESS = "govbaseline-progress: "

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
        "tool": {"version": pages.tool_version(), "roles": pages.roles_commit()},
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
            # A control a command enforces (REP-01: `govbaseline inspection`) is answered by that
            # command's report, never by a host's checks: named, and left out of this run's verdict.
            commands = {c.id: c.command for c in answering if getattr(c, "command", "")}
            statuses = {c.id: (_fleet_status(hosts, c.id) if c.status == "implemented" else "planned")
                        for c in answering if c.id not in commands}
            entry["controls"] = {cid: status or "not checked" for cid, status in statuses.items()}
            entry["controls"].update({cid: f"by govbaseline {command}" for cid, command in commands.items()})
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


# -- HTML and PDF --------------------------------------------------------------------------------

FAILING = ("error", "fail")
# The statuses the page's filter offers, worst first.
FILTER_STATUSES = ("error", "fail", "unreachable", "waived", "skipped", "pass")


@cache
def _known_tags() -> frozenset[str]:
    from govbaseline import engines

    return frozenset(engines.known_tags())


def repair_command(inventory: str, host: str, control_id: str) -> str:
    """The command that applies one control again on one host: the control's own tag (``fw-01``),
    else its role's, as the roles carry them; without either, the whole baseline on that host."""
    catalogue = load_catalogue()
    tags = _known_tags()
    tag = ""
    if catalogue.has(control_id):
        control = catalogue.get(control_id)
        tag = control.tag if control.tag in tags else control.role if control.role in tags else ""
    command = ["govbaseline", "apply", "-i", inventory or "INVENTORY", "--limit", host]
    return shlex.join([*command, "--tags", tag] if tag else command)


def rationale(control_id: str) -> list[str]:
    """Why a control is in the baseline: the policy clauses it answers (verbatim), or why it stands
    on the CIS benchmark alone."""
    catalogue = load_catalogue()
    if not catalogue.has(control_id):
        return []
    control = catalogue.get(control_id)
    quotes = {c.id: c for c in catalogue.clauses}
    said = [f"{quotes[c].policy}: {quotes[c].quote}" for c in control.clauses if c in quotes]
    return said or ([control.unasked] if control.unasked else [*control.cis])


def failures(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every control that failed or erred on a host, worst and then by host and control: its first
    failing check's message, why the control exists and the command that repairs it."""
    found = []
    for host_name, host in data["hosts"].items():
        for control_id, control in host["controls"].items():
            if control["status"] not in FAILING:
                continue
            failed = [c for c in control["checks"] if c["status"] in FAILING]
            found.append({"host": host_name, "control": control_id, "title": control["title"],
                          "status": control["status"], "check": failed[0]["check"] if failed else "",
                          "message": failed[0]["message"] if failed else "",
                          "rationale": rationale(control_id),
                          "repair": repair_command(data.get("inventory", ""), host_name, control_id)})
    return sorted(found, key=lambda f: (SEVERITY.index(f["status"]), f["host"], f["control"]))


def _context(data: dict[str, Any], expanded: bool) -> dict[str, Any]:
    """What report.html.j2 shows, from the report data (an older report.json without ``tool`` too)."""
    policies = []
    for policy, clauses in sorted(data.get("policies", {}).items()):
        tally: dict[str, int] = {}
        for clause in clauses:
            tally[clause["status"]] = tally.get(clause["status"], 0) + 1
        policies.append((policy, clauses, tally))
    waivers = data.get("waivers", [])
    due = sorted((w for w in waivers if w["state"] != "active"), key=lambda w: w["expires"])
    hosts = sorted(data["hosts"].items())
    return {
        "generated": data["generated"], "inventory": data["inventory"], "summary": data["summary"],
        "tool": data.get("tool", {"version": "unknown", "roles": "unknown"}),
        "hosts": [name for name, _ in hosts], "host_items": hosts, "statuses": FILTER_STATUSES,
        "failures": failures(data),
        "unreachable": [(name, host.get("error", "")) for name, host in hosts if not host.get("reachable", True)],
        # Expired and soon-to-expire waivers first thing in the report: each is a decision due.
        "waivers": waivers,
        "waivers_due": [{**w, "scope": ", ".join(w["hosts"] + [f"group {g}" for g in w["groups"]])} for w in due],
        "policies": policies, "drift": data.get("drift", {"previous": None, "changes": []}),
        "not_a_server_matter": NOT_A_SERVER_MATTER, "expanded": expanded,
    }


def render_html(data: dict[str, Any], expanded: bool = False) -> str:
    """A self-contained page from ``templates/report.html.j2``; autoescaping keeps every value from
    a host text, so evidence cannot inject markup. ``expanded``: every piece of evidence open (the
    PDF's copy)."""
    return pages.render("report.html.j2", **_context(data, expanded))


def write_pdf(data: dict[str, Any], report_dir: Path) -> Path:
    """report.pdf beside report.html: the same page printed, its evidence open. Not in the evidence
    bundle: a rendering of report.json, which is (a PDF's bytes change with the renderer)."""
    pdf = report_dir / "report.pdf"
    pages.write_pdf(render_html(data, expanded=True), pdf)
    return pdf
