"""The self-inspection report of a period (REP-01), from the evidence history.

Every number comes from the archived runs (``govbaseline.history``) whose report ended inside the
period, and from the records the hosts kept (``govbaseline.records``), whichever run gathered them.
A day without a run is a day without evidence: clause shares count it as not answered, and a
statement such as "no system was infected by malicious code" is only made when every day of the
period has a run, every host's records were read and nothing was found; otherwise the report says
what happened instead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govbaseline.catalogue import load_catalogue
from govbaseline.history import RECORDS, Run
from govbaseline.report import ANSWERED

FAILED = ("fail", "error")
NOT_SYSTEMS = ("all", "ungrouped")  # Ansible's own groups, not information systems


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # the last day, inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start}): swap --from and --to")

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def holds(self, moment: dt.datetime) -> bool:
        return self.start <= moment.astimezone(dt.UTC).date() <= self.end

    def before(self) -> Period:
        """The period of the same length just before this one."""
        length = self.end - self.start
        end = self.start - dt.timedelta(days=1)
        return Period(end - length, end)

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _link(out: Path | None, path: Path) -> str:
    return os.path.relpath(path, out) if out else str(path)


# -- what the hosts recorded -----------------------------------------------------------------------

# Incident kinds, in the order the report lists them, with the words a person reads.
KINDS = {
    "malware_found": "malicious code found",
    "malware_quarantined": "malicious code quarantined",
    "scan_failures": "antivirus scans that could not run or finish",
    "intrusion_alerts": "intrusion alerts (Suricata, fail2ban)",
    "pages_tampered": "web pages tampered with",
    "pages_restored": "web pages restored from the known-good copy",
    "files_changed": "system files changed outside an approved change (AIDE)",
    "backup_failures": "failed backups, repository checks or restore drills",
    "port_scan_findings": "port scan findings (undeclared open ports, failed scans)",
    "hardening_findings": "Lynis findings (index dropped, new warnings)",
    "patch_reports": "patch run reports raised as alerts",
    "undelivered_alerts": "alerts not delivered (every delivery attempt failed)",
    "held_back_alerts": "alerts held back by flood control (in the journal, sent as a summary)",
}


def _kinds_of(alert: dict[str, str]) -> list[str]:
    source, kind, message = (alert.get(k, "") for k in ("GOVBASELINE_SOURCE", "GOVBASELINE_KIND", "MESSAGE"))
    found = []
    if source == "antivirus" and " found in " in message:
        found.append("malware_found")
        if "moved to the quarantine" in message:
            found.append("malware_quarantined")
    elif source == "antivirus":
        # Any other antivirus alert says a scan could not run or finish: no scan, no evidence of no malware.
        found.append("scan_failures")
    elif source in ("suricata", "fail2ban"):
        found.append("intrusion_alerts")
    elif source == "integrity" and kind.startswith("web pages differ"):
        found.append("pages_tampered")
        if kind.endswith(", restored"):
            found.append("pages_restored")
    elif source == "integrity" and "differ from the approved state" in message:
        found.append("files_changed")
    elif source == "backup":
        found.append("backup_failures")
    elif source == "portscan":
        found.append("port_scan_findings")
    elif source == "lynis":
        found.append("hardening_findings")
    elif source == "patching":
        found.append("patch_reports")
    if alert.get("GOVBASELINE_HELD"):
        found.append("held_back_alerts")
    return found


def _alert_time(alert: dict[str, str]) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(int(alert["__REALTIME_TIMESTAMP"]) / 1e6, dt.UTC)
    except (KeyError, ValueError):
        return None


def incidents(runs: list[Run], period: Period, out: Path | None) -> dict[str, Any]:
    """Alerts of the period by kind, each once (a journal entry is gathered again by later runs)."""
    seen: dict[tuple[str, str], tuple[dict[str, str], Run]] = {}
    delivered: set[tuple[str, str]] = set()
    failed_delivery: dict[tuple[str, str], tuple[dict[str, str], Run]] = {}
    for run in runs:
        for host, records in run.records.items():
            for alert in records.get("alerts", []):
                alert_id = alert.get("GOVBASELINE_ALERT_ID", "")
                if alert.get("GOVBASELINE_DELIVERY") == "ok":
                    delivered.add((host, alert_id))
                elif alert.get("GOVBASELINE_DELIVERY") == "failed":
                    failed_delivery.setdefault((host, alert_id), (alert, run))
                elif alert.get("GOVBASELINE_SOURCE"):
                    seen.setdefault((host, alert_id or alert.get("__REALTIME_TIMESTAMP", "")), (alert, run))
    by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}

    def event(host: str, alert: dict[str, str], run: Run, when: dt.datetime) -> dict[str, Any]:
        return {"time": _iso(when), "host": host, "source": alert.get("GOVBASELINE_SOURCE", ""),
                "message": alert.get("MESSAGE", ""), "run": run.name,
                "evidence": _link(out, run.folder / RECORDS / f"{host}.json")}

    for (host, _), (alert, run) in sorted(seen.items(), key=lambda item: item[1][0].get("__REALTIME_TIMESTAMP", "")):
        when = _alert_time(alert)
        if when is None or not period.holds(when):
            continue
        for kind in _kinds_of(alert):
            by_kind[kind].append(event(host, alert, run, when))
    sources = {(host, a.get("GOVBASELINE_ALERT_ID", "")): a for (host, _), (a, _r) in seen.items()}
    for (host, alert_id), (alert, run) in sorted(failed_delivery.items()):
        when = _alert_time(sources.get((host, alert_id), alert))
        if (host, alert_id) not in delivered and when is not None and period.holds(when):
            by_kind["undelivered_alerts"].append(event(host, sources.get((host, alert_id), alert), run, when))
    return {kind: {"label": KINDS[kind], "count": len(events),
                   "hosts": sorted({e["host"] for e in events}), "events": events}
            for kind, events in by_kind.items()}


def _states(runs: list[Run], name: str, period: Period) -> list[tuple[str, dict[str, Any], Run]]:
    """A job's recorded states (``backup/drill.json``...) that finished in the period, each once."""
    found: dict[tuple[str, Any], tuple[str, dict[str, Any], Run]] = {}
    for run in runs:
        for host, records in run.records.items():
            state = records.get("state", {}).get(name)
            if not isinstance(state, dict) or not isinstance(state.get("finished"), int | float):
                continue
            if period.holds(dt.datetime.fromtimestamp(state["finished"], dt.UTC)):
                found.setdefault((host, state["finished"]), (host, state, run))
    return sorted(found.values(), key=lambda item: (item[1]["finished"], item[0]))


def drills(runs: list[Run], period: Period, out: Path | None) -> dict[str, Any]:
    """Restore drills recorded in the period: how many ran and passed (a host keeps only its
    latest drill: drills between two runs are not seen, the report says so)."""
    done = _states(runs, "backup/drill.json", period)
    return {"run": len(done), "passed": sum(s.get("status") == "ok" for _, s, _r in done),
            "drills": [{"host": h, "finished": _iso(dt.datetime.fromtimestamp(s["finished"], dt.UTC)),
                        "status": s.get("status", ""), "error": s.get("error", ""), "run": r.name,
                        "evidence": _link(out, r.folder / RECORDS / f"{h}.json")} for h, s, r in done]}


def hardening(runs: list[Run], period: Period) -> dict[str, Any]:
    """Each host's Lynis hardening index over the period, in the order the audits ran."""
    trend: dict[str, list[dict[str, Any]]] = {}
    for host, state, _run in _states(runs, "vulnscan/last.json", period):
        if isinstance(state.get("hardening_index"), int):
            trend.setdefault(host, []).append(
                {"finished": _iso(dt.datetime.fromtimestamp(state["finished"], dt.UTC)),
                 "index": state["hardening_index"], "warnings": len(state.get("warnings") or {})})
    return {host: {"first": points[0]["index"], "last": points[-1]["index"],
                   "lowest": min(p["index"] for p in points), "audits": points} for host, points in trend.items()}


# -- what the runs found ---------------------------------------------------------------------------


def findings(runs: list[Run], out: Path | None) -> list[dict[str, Any]]:
    """Each failed control on a host: when a run first found it failing, and when (by which run) a
    later run found it passing again; None while it is still failing at the last run."""
    open_: dict[tuple[str, str], dict[str, Any]] = {}
    done = []
    for run in runs:
        for host, data in sorted(run.data["hosts"].items()):
            if not data.get("reachable", True):
                continue
            for control_id, control in sorted(data["controls"].items()):
                key = (host, control_id)
                if control["status"] in FAILED and key not in open_:
                    message = next((c["message"] for c in control["checks"] if c["status"] in FAILED), "")
                    open_[key] = {"host": host, "control": control_id, "title": control.get("title", ""),
                                  "failed": _iso(run.generated), "failed_run": run.name,
                                  "failed_evidence": _link(out, run.folder / "report.html"),
                                  "message": message.splitlines()[0] if message else "",
                                  "fixed": None, "fixed_run": None, "fixed_evidence": None}
                elif control["status"] == "pass" and key in open_:
                    finding = open_.pop(key)
                    finding.update(fixed=_iso(run.generated), fixed_run=run.name,
                                   fixed_evidence=_link(out, run.folder / "report.html"))
                    done.append(finding)
    return sorted(done + list(open_.values()), key=lambda f: (f["failed"], f["host"], f["control"]))


def clause_shares(runs: list[Run], period: Period) -> list[dict[str, Any]]:
    """Per server clause: on how many days of the period the day's last run found it answered."""
    last_of_day: dict[dt.date, Run] = {}
    for run in runs:
        last_of_day[run.generated.date()] = run
    shares = []
    for clause in load_catalogue().clauses:
        if not clause.server:
            continue
        answered = 0
        for run in last_of_day.values():
            entries = run.data.get("policies", {}).get(clause.policy, [])
            answered += any(e["clause"] == clause.id and e["status"] == ANSWERED for e in entries)
        days = len(period.days)
        shares.append({"clause": clause.id, "quote": clause.quote, "days_answered": answered,
                       "days_checked": len(last_of_day), "days": days, "share": round(answered / days, 3)})
    return shares


def waivers(runs: list[Run], period: Period) -> dict[str, list[dict[str, Any]]]:
    """The waivers the period's runs read: in force at its end, expired during it, expired before."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for run in runs:
        for waiver in run.data.get("waivers", []):
            key = (waiver["control"], tuple(waiver["hosts"]), tuple(waiver["groups"]), waiver["expires"])
            found[key] = {k: waiver[k] for k in ("control", "hosts", "groups", "justification", "approver", "expires")}
    result: dict[str, list[dict[str, Any]]] = {"in_force": [], "expired_in_period": [], "expired_before": []}
    for waiver in sorted(found.values(), key=lambda w: (w["expires"], w["control"])):
        expires = dt.date.fromisoformat(waiver["expires"])
        kind = "in_force" if expires >= period.end else "expired_in_period" if expires >= period.start \
            else "expired_before"
        result[kind].append(waiver)
    return result


# -- the report ------------------------------------------------------------------------------------


def summarise(all_runs: list[Run], period: Period, out: Path | None = None) -> dict[str, Any]:
    """Everything the report says about one period, as data (the JSON form of the report)."""
    runs = [r for r in all_runs if period.holds(r.generated)]
    run_days = sorted({r.generated.date() for r in runs})
    missing_days = [d.isoformat() for d in period.days if d not in run_days]
    hosts: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {}
    for run in runs:
        for host, data in run.data["hosts"].items():
            entry = hosts.setdefault(host, {"runs": 0, "unreachable": 0, "records_missing": 0, "last_score": None,
                                            "days_checked": set()})
            entry["runs"] += 1
            entry["days_checked"].add(run.generated.date())
            if not data.get("reachable", True):
                entry["unreachable"] += 1
            else:
                entry["last_score"] = data["summary"]["score"]
                # No records, or records with a gap (journal or a state file unreadable).
                got = run.records.get(host, {"error": ""})
                if "error" in got or got.get("problems"):
                    entry["records_missing"] += 1
            groups[host] = run.groups.get(host, groups.get(host, []))
    for entry in hosts.values():  # JSON: a count; a host absent from runs of other hosts has gaps of its own
        entry["days_without_runs"] = len(run_days) - len(entry.pop("days_checked"))
    systems: dict[str, list[str]] = {}
    for host in hosts:
        for group in groups.get(host) or ["ungrouped"]:
            if group not in NOT_SYSTEMS or not groups.get(host):
                systems.setdefault(group, []).append(host)
    found = findings(runs, out)
    last = runs[-1] if runs else None
    summary: dict[str, Any] = {
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat()},
        "coverage": {"days": len(period.days), "days_with_runs": len(run_days), "days_without_runs": missing_days,
                     "runs": len(runs), "first_run": _iso(runs[0].generated) if runs else None,
                     "last_run": _iso(last.generated) if last else None,
                     "runs_list": [{"run": r.name, "generated": _iso(r.generated),
                                    "passed": r.data["summary"]["passed"],
                                    "report": _link(out, r.folder / "report.html")} for r in runs]},
        "systems": {name: sorted(members) for name, members in sorted(systems.items())},
        "hosts": dict(sorted(hosts.items())),
        "clauses": clause_shares(runs, period),
        "findings": found,
        # A run after the period gathers the journal of its last hours: every run reads records.
        "incidents": incidents(all_runs, period, out),
        "drills": drills(all_runs, period, out),
        "backups": _backups(all_runs, period),
        "hardening": hardening(all_runs, period),
        "patch_latency": {"median_days": None, "worst_days": None,
                          "why": "the hosts record when unattended-upgrades installed updates, not when each "
                                 "security update became available: the latency cannot be computed from the "
                                 "records (PATCH controls check that no security update is pending at each run)"},
        "waivers": waivers(runs, period),
    }
    summary["statements"] = statements(summary, last, out)
    return summary


def _backups(runs: list[Run], period: Period) -> dict[str, Any]:
    done = _states(runs, "backup/last.json", period)
    return {"recorded": len(done), "failed": sum(s.get("status") != "ok" for _, s, _r in done)}


def statements(summary: dict[str, Any], last: Run | None, out: Path | None) -> list[dict[str, Any]]:
    """The source report's statements, each made only where the evidence supports it (with the
    evidence); otherwise what happened instead."""
    coverage, inc = summary["coverage"], summary["incidents"]
    gaps = []
    if coverage["runs"] == 0:
        gaps.append("no verify run in the period: there is no evidence for it")
    elif coverage["days_without_runs"]:
        gaps.append(f"{len(coverage['days_without_runs'])} of {coverage['days']} days have no run "
                    f"(first: {coverage['days_without_runs'][0]})")
    missing = sorted(h for h, e in summary["hosts"].items() if e["records_missing"] or e["unreachable"])
    if missing:
        gaps.append(f"the records of {', '.join(missing)} could not be read at every run")
    absent = sorted(h for h, e in summary["hosts"].items() if e.get("days_without_runs"))
    if absent:
        gaps.append(f"{', '.join(absent)} not checked on every day with a run "
                    f"({', '.join(str(summary['hosts'][h]['days_without_runs']) for h in absent)} days without)")
    evidence = [r["report"] for r in coverage["runs_list"]]

    def claim(statement: str, problems: list[str]) -> dict[str, Any]:
        supported = not problems and not gaps
        return {"statement": statement, "supported": supported,
                "instead": "; ".join(problems + gaps) if not supported else "",
                "evidence": evidence if supported else []}

    def counted(*kinds: str) -> list[str]:
        return [f"{inc[k]['count']} {inc[k]['label']} ({', '.join(inc[k]['hosts'])})" for k in kinds if inc[k]["count"]]

    open_findings = [f for f in summary["findings"] if f["fixed"] is None]
    drills = summary["drills"]
    return [
        claim("No system was infected by malicious code.",
              counted("malware_found", "malware_quarantined", "scan_failures")),
        claim("The portal was not attacked or tampered with.", counted("pages_tampered", "intrusion_alerts")),
        claim("Backups ran and every restore drill passed.",
              counted("backup_failures") + ([f"{drills['run'] - drills['passed']} of {drills['run']} restore "
                                             "drills failed"] if drills["passed"] < drills["run"] else [])
              + (["no restore drill was recorded"] if not drills["run"] else [])
              + (["no backup was recorded"] if not summary["backups"]["recorded"] else [])
              + ([f"{summary['backups']['failed']} recorded backups did not end ok"]
                 if summary["backups"]["failed"] else [])),
        claim("Every alert was delivered.", counted("undelivered_alerts")),
        claim("The whole assessment shows the systems safe: every control passes at the end of the period.",
              ([f"{len(open_findings)} findings still open at the last run: "
                + ", ".join(f"{f['control']} on {f['host']}" for f in open_findings)] if open_findings else [])
              + ([] if last is None or last.data["summary"]["passed"] else ["the last run of the period failed"])
              + _partial(last, summary["hosts"])),
    ]


def _partial(last: Run | None, hosts: dict[str, Any]) -> list[str]:
    """Why the last run is not the whole assessment: narrowed to some controls or checks, or
    without some of the period's hosts."""
    if last is None:
        return []
    narrowed = last.data.get("selection") or {}
    problems = [f"the last run checked only {', '.join(narrowed[k])} ({k})" for k in ("controls", "checks")
                if narrowed.get(k)]
    left_out = sorted(set(hosts) - set(last.data["hosts"]))
    if left_out:
        problems.append(f"the last run did not check {', '.join(left_out)}")
    return problems


def compare(current: dict[str, Any], previous: dict[str, Any]) -> list[dict[str, Any]]:
    """The numbers of both periods side by side."""

    def numbers(s: dict[str, Any]) -> dict[str, Any]:
        row = {"runs": s["coverage"]["runs"], "days with a run": s["coverage"]["days_with_runs"],
               "days": s["coverage"]["days"], "systems": len(s["systems"]), "hosts": len(s["hosts"]),
               "findings": len(s["findings"]),
               "findings still open": sum(f["fixed"] is None for f in s["findings"]),
               "restore drills run": s["drills"]["run"], "restore drills passed": s["drills"]["passed"],
               "waivers in force": len(s["waivers"]["in_force"])}
        row.update({v["label"]: v["count"] for v in s["incidents"].values()})
        return row

    now, then = numbers(current), numbers(previous)
    return [{"what": k, "this period": now[k], "previous period": then[k]} for k in now]


def build(runs: list[Run], period: Period, previous: Period | None = None, out: Path | None = None,
          history: Path | None = None) -> dict[str, Any]:
    from govbaseline import __version__

    previous = previous or period.before()
    data = summarise(runs, period, out)
    data["previous"] = summarise(runs, previous, out)
    data["comparison"] = compare(data, data["previous"])
    data["generated"] = _iso(dt.datetime.now(dt.UTC))
    data["history"] = str(history) if history else ""
    data["tool"] = f"govbaseline {__version__}"
    return data


def render_html(data: dict[str, Any]) -> str:
    from govbaseline import pages

    return pages.render("inspection.html.j2", data=data)


def write(data: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """inspection.json and inspection.html in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "inspection.json", out / "inspection.html"
    paths[0].write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(render_html(data), encoding="utf-8")
    return paths
