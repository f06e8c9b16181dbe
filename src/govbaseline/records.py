"""What the hosts recorded themselves, gathered into the evidence history with each run.

Every event a role's scripts raise goes through ``govbaseline-alert``, which writes it to the
journal first (identifier ``govbaseline-alert``, fields ``GOVBASELINE_SOURCE``, ``_KIND``,
``_SEVERITY``, ``_ALERT_ID``, and for each delivery attempt ``_DELIVERY`` ok/failed): antivirus
detections and quarantines (source ``antivirus``), IDS alerts (``suricata``, ``fail2ban``), tamper
events and restores (``integrity``), backup, check and drill failures (``backup``), patch runs
(``patching``), Lynis and port scan findings (``lynis``, ``portscan``). The latest state of each
job is kept in JSON under /var/lib/govbaseline (``state_dir`` of the role's config.json): backup
``last.json``/``check.json``/``drill.json``, integrity ``aide.json``/``tamper.json``, vulnscan
``last.json`` (Lynis hardening index), antivirus quarantine records. One small Python program run
on the host reads them all (Debian's python3, no module beyond the standard library), through the
same connection as the checks (testinfra's ansible backend).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from govbaseline import history
from govbaseline.inventory import Selection

# Runs on the host: argv[1] is the epoch second from which to read the journal.
HOST_PROGRAM = r"""
import glob, json, os, subprocess, sys
FIELDS = ("__REALTIME_TIMESTAMP", "MESSAGE", "PRIORITY", "GOVBASELINE_SOURCE", "GOVBASELINE_KIND",
          "GOVBASELINE_SEVERITY", "GOVBASELINE_ALERT_ID", "GOVBASELINE_DELIVERY", "GOVBASELINE_TARGET",
          "GOVBASELINE_HELD")
out = {"alerts": [], "state": {}, "quarantine": [], "problems": []}
def load(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        out["problems"].append("%s: %s" % (path, exc))
        return None
try:
    proc = subprocess.run(["journalctl", "-o", "json", "-t", "govbaseline-alert", "--no-pager",
                           "--since", "@" + sys.argv[1]], capture_output=True, text=True)
except OSError as exc:
    proc = subprocess.CompletedProcess([], 1, "", str(exc))
if proc.returncode != 0:
    out["problems"].append("journalctl: " + proc.stderr.strip()[-300:])
for line in proc.stdout.splitlines():
    try:
        entry = json.loads(line)
    except ValueError:
        continue
    out["alerts"].append({k: entry[k] for k in FIELDS if isinstance(entry.get(k), str)})
for role, names in (("backup", ("last.json", "check.json", "drill.json")),
                    ("integrity", ("aide.json", "tamper.json")), ("vulnscan", ("last.json",))):
    config = load("/etc/govbaseline/%s/config.json" % role)
    if config and config.get("state_dir"):
        for name in names:
            state = load(os.path.join(config["state_dir"], name))
            if state is not None:
                out["state"]["%s/%s" % (role, name)] = state
scan = load("/etc/govbaseline/antivirus/scan.json")
if scan and scan.get("quarantine"):
    for path in sorted(glob.glob(os.path.join(scan["quarantine"], "*.json"))):
        record = load(path)
        if record is not None:
            out["quarantine"].append(record)
print(json.dumps(out))
"""


def gather(inventory: Path, connections: dict[str, Any], hosts: list[str],
           since: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Each host's records (``alerts``, ``state``, ``quarantine``, ``problems``); a host that could
    not be read gets ``{"error": why}``, reported as a gap, never as a quiet period. ``connections``
    is the ``ansible-inventory --list`` form of ``inventory`` verify hands the checks
    (``connection_inventory``), given to testinfra's runner as the checks plugin does
    (``plugin._use_resolved_inventory``): no second ``ansible-inventory`` run, no vault prompt."""
    import testinfra
    from testinfra.utils.ansible_runner import AnsibleRunner

    AnsibleRunner.get_runner(str(inventory)).__dict__["inventory"] = connections
    found: dict[str, dict[str, Any]] = {}
    for name in hosts:
        try:
            host = testinfra.get_host(f"ansible://{name}", ansible_inventory=str(inventory))
            done = host.run("python3 -c %s %s", HOST_PROGRAM, str(since[name]))
            if done.rc != 0:
                raise RuntimeError(f"exit {done.rc}: {done.stderr.strip()[-300:]}")
            found[name] = json.loads(done.stdout)
        except Exception as exc:  # any failure is this host's gap, stated in the report
            found[name] = {"error": f"the host's records could not be read: {exc}"}
    return found


def archive_run(selection: Selection, report_dir: Path, data: dict[str, Any], where: Path) -> dict[str, Any]:
    """Gather the records of the run's reachable hosts, each since its own last archived read (less a
    day: the journal is read again, and the inspection counts each entry once) and archive the run in
    ``where`` with its hosts' inventory groups; return the run's index line."""
    from govbaseline.verify import connection_inventory

    hosts = sorted(data["hosts"])
    groups = {h: selection.hosts.groups_of(h) for h in hosts if h in selection.hosts.hostvars}
    # Each host from its own last archived read (less a day), not the history's last run: a host
    # left out of some runs (--limit) is read for the whole time since it was last read.
    last = history.last_read_by_host(where)
    never = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    since = {h: int(((last[h] - dt.timedelta(days=1)) if h in last else never).timestamp()) for h in hosts}
    reachable = [h for h in hosts if h not in data["summary"]["unreachable"] and h in groups]
    connections = connection_inventory(selection, {h: {} for h in reachable}, reachable)
    found = gather(selection.inventory.resolve(), connections, reachable, since)
    found.update({h: {"error": "unreachable at this run"} for h in hosts if h not in reachable})
    # The records go into the history and the inspection report as they are: the inventory's secrets
    # and private keys masked first, as verify masks its own results (an error quoting a URL).
    from govbaseline.verify import masker, secret_values

    return history.archive(report_dir, where, groups, masked(found, masker(secret_values(selection.hosts.hostvars))))


def masked(value: Any, clean: Any) -> Any:
    """``value`` (JSON data) with ``clean`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {masked(k, clean): masked(v, clean) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, clean) for v in value]
    return value
