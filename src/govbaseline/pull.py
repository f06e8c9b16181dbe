"""Pull mode: each host applies the baseline itself and checks itself; a collector gathers the results.

Where pushing from one controller stops scaling, role ``pull`` (``pull_enabled: true``) gives each
host a timer that runs ``/usr/local/sbin/govbaseline-pull``:

1. ``ansible-pull`` clones or updates the organisation's repository (this project with its
   inventory, over HTTPS or SSH) and applies ``playbooks/site.yml`` to the host alone, locally;
2. the checkout's own govbaseline checks the host from the inside (:func:`write_result`, run as
   ``python3 -m govbaseline pull-result``): checks that need a view from outside are skipped;
3. the result (the checks with their evidence, secrets masked; the commit; how ansible-pull ended)
   is left in ``/var/lib/govbaseline/pull/result.json``.

``govbaseline collect`` (:func:`collect`) fetches every host's result over SSH, ``--forks`` at a
time, and writes one report as ``verify`` does: a host that cannot be reached, has no result yet,
or whose result is older than ``--max-age-hours`` is named and fails the report; so does a host
whose ansible-pull failed.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from govbaseline import report
from govbaseline.inventory import Selection, ansible_env, select, tool
from govbaseline.verify import Outcome, masker, redact, secret_values, start, verify
from govbaseline.waivers import Waiver

RESULT_FORMAT = 1
RESULT_PATH = "/var/lib/govbaseline/pull/result.json"
LOG_TAIL = 4000  # characters of ansible-pull's output kept in a result
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# The shape of one check's result, as govbaseline.checks.plugin writes it.
ITEM_KEYS = frozenset({"check", "controls", "status", "message", "duration", "evidence"})
EVIDENCE_KEYS = frozenset({"command", "rc", "stdout", "stderr", "time"})
STATUSES = frozenset({"pass", "fail", "error", "skipped"})


def write_result(inventory: Path, host: str, out: Path, report_dir: Path, apply_returncode: int,
                 apply_log: Path | None, commit: str) -> dict[str, Any]:
    """On the host: check it from the inside and write ``out`` (root only), replacing it whole."""
    selection = select(inventory, host)
    if list(selection.hosts.hostvars) != [host]:
        raise ValueError(f"{host} is not a host of the inventory {inventory}")
    outcome = verify(inventory, report_dir, forks=1, selection=selection, local=True)
    clean = masker(secret_values(selection.hosts.hostvars))
    log = apply_log.read_text(errors="replace") if apply_log and apply_log.exists() else ""
    result = {
        "format": RESULT_FORMAT,
        "host": host,
        "finished": dt.datetime.now(dt.UTC).strftime(TIME_FORMAT),
        "commit": commit,
        "apply": {"returncode": apply_returncode, "log_tail": clean(log[-LOG_TAIL:])},
        "results": outcome.results,
    }
    partial = out.with_name(out.name + ".new")
    partial.touch(mode=0o600)
    partial.write_text(json.dumps(result))
    partial.replace(out)
    return result


def fetch(selection: Selection, forks: int) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Every host's result file, over SSH with Ansible (``forks`` at a time): (results by host,
    why each other host has none)."""
    hosts = sorted(selection.hosts.hostvars)
    found: dict[str, dict[str, Any]] = {}
    missing: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="govbaseline-collect-") as tmp:
        # --tree: Ansible writes each host's answer (fetched, failed, unreachable) as JSON to <tree>/<host>.
        tree = Path(tmp) / "answers"
        cmd = [tool("ansible"), "all", "-i", str(selection.inventory), "--limit", ",".join(hosts),
               "-f", str(forks), "--tree", str(tree), "-m", "ansible.builtin.fetch",
               "-a", f"src={RESULT_PATH} dest={tmp}/files/ flat=false fail_on_missing=true validate_checksum=true"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), check=False)
        for host in hosts:
            try:
                answer = json.loads((tree / host).read_text())
            except (OSError, ValueError):
                missing[host] = f"no answer from Ansible: {(proc.stderr or proc.stdout).strip()[-500:]}"
                continue
            path = Path(tmp) / "files" / host / RESULT_PATH.lstrip("/")
            why = str(answer.get("msg", "")).strip()
            if answer.get("unreachable"):
                missing[host] = f"unreachable: {why}"
            elif answer.get("failed") or not path.exists():
                missing[host] = (f"no pull result yet ({RESULT_PATH}): has its timer run?"
                                 if "not found" in why or "does not exist" in why else f"result not fetched: {why}")
            else:
                try:
                    found[host] = json.loads(path.read_text())
                except ValueError as exc:
                    missing[host] = f"{RESULT_PATH} is not JSON: {exc}"
    return found, missing


def judge(host: str, result: dict[str, Any], now: dt.datetime, max_age: dt.timedelta) -> str | None:
    """Why a fetched result cannot stand for the host now; None when it can."""
    if not isinstance(result, dict) or result.get("format") != RESULT_FORMAT:
        return f"{RESULT_PATH} is not a result of format {RESULT_FORMAT}"
    if result.get("host") != host:
        return f"{RESULT_PATH} is the result of {result.get('host')!r}, not of {host}"
    try:
        finished = dt.datetime.strptime(str(result.get("finished")), TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return f"{RESULT_PATH} has no valid finishing time"
    if now - finished > max_age:
        hours = (now - finished).total_seconds() / 3600
        return (f"stale: its last pull result is {hours:.1f} h old (at most {max_age.total_seconds() / 3600:g} h "
                f"accepted): is its timer running?")
    if not isinstance(result.get("results"), list) or not isinstance(result.get("apply"), dict):
        return f"{RESULT_PATH} lacks its results"
    for item in result["results"]:
        if not (isinstance(item, dict) and item.keys() >= ITEM_KEYS and isinstance(item["controls"], list)
                and item["status"] in STATUSES and isinstance(item["evidence"], list)
                and all(isinstance(e, dict) and e.keys() >= EVIDENCE_KEYS for e in item["evidence"])):
            return f"{RESULT_PATH} holds a check result of the wrong shape"
    return None


def enrolled_hosts(selection: Selection) -> list[str]:
    """The selected hosts in pull mode (``pull_enabled`` true): only they leave results."""
    from ansible.module_utils.parsing.convert_bool import boolean

    return sorted(h for h, v in selection.hosts.hostvars.items() if boolean(v.get("pull_enabled", False), strict=False))


def collect(inventory: Path, report_dir: Path, limit: str | None = None, forks: int = 10,
            max_age_hours: float = 6.0, waivers: list[Waiver] | None = None,
            now: dt.datetime | None = None) -> Outcome:
    """Gather the pull results of the inventory's hosts in pull mode into one report in ``report_dir``."""
    if max_age_hours <= 0:
        raise ValueError(f"max_age_hours must be above 0, not {max_age_hours}")
    selection, previous = start(inventory, report_dir, forks, limit, waivers=waivers)
    enrolled = enrolled_hosts(selection)
    if not enrolled:
        raise ValueError(f"no host of {inventory}{' matching ' + limit if limit else ''} has pull_enabled: true")
    selection = selection.narrowed(enrolled)
    hosts = sorted(selection.hosts.hostvars)
    found, down = fetch(selection, forks)
    now = now or dt.datetime.now(dt.UTC)
    results: list[dict[str, Any]] = []
    pulls: dict[str, dict[str, Any]] = {}
    for host, result in sorted(found.items()):
        why = judge(host, result, now, dt.timedelta(hours=max_age_hours))
        if why:
            down[host] = why
            continue
        results += [{**item, "host": host} for item in result["results"]]
        pulls[host] = {"finished": result["finished"], "commit": str(result.get("commit", "")),
                       "apply_returncode": int(result["apply"].get("returncode", 1)),
                       "apply_log_tail": str(result["apply"].get("log_tail", ""))}
    # A host's own masking is trusted no further than ours: mask again with the inventory's secrets.
    clean = redact(results, secret_values(selection.hosts.hostvars))
    for pull in pulls.values():
        pull["apply_log_tail"] = clean(pull["apply_log_tail"])
    (report_dir / "junit.xml").unlink(missing_ok=True)  # a collected report has no pytest run of its own
    data = report.build(results, hosts, inventory=str(inventory), unreachable=down, previous=previous,
                        waivers=waivers, groups={h: selection.hosts.groups_of(h) for h in hosts}, pulls=pulls)
    digest = report.write(data, report_dir)
    return Outcome(report_dir=report_dir, data=data, returncode=0 if data["summary"]["passed"] else 1,
                   output="", bundle_sha256=digest, results=results)
