"""pytest plugin loaded by ``govbaseline verify``: evidence capture, inventory facts, results file.

Every command a check runs on a host is recorded (command, exit code, output) as that check's
evidence; the results of all checks are written as JSON for the report writer.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from govbaseline.report import PROGRESS, SWITCHED_OFF

PROGRESS_EVERY = 20.0  # seconds between the lines saying how far each host is
EVIDENCE_LIMIT = 4000  # characters of output kept per command
# Seconds a TCP connection may take before a port counts as not answering (a firewall drops the SYN
# rather than refusing it). Linux resends an unanswered SYN after 1 s and next after 3 s (RFC 6298's
# initial RTO), so 2 s lets one lost SYN be resent and answered on any path with a round trip under
# a second: as strong a test as any timeout below 3 s, and a dropped port costs 2 s, not 3.
CONNECT_TIMEOUT = 2.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("govbaseline")
    group.addoption("--govbaseline-controls", default="", help="comma-separated control ids to run")
    group.addoption("--govbaseline-results", default=os.environ.get("GOVBASELINE_RESULTS", ""),
                    help="where to write the results JSON")
    group.addoption("--govbaseline-progress", action="store_true",
                    help=f"write each host's progress to stderr, on lines starting {PROGRESS!r}")


def pytest_configure(config: pytest.Config) -> None:
    _use_resolved_inventory(config)
    config.addinivalue_line("markers", "control(id): the catalogue control a check verifies")
    config.addinivalue_line("markers", "role(name): the role whose hosts a check concerns, when not its control's")
    config.addinivalue_line("markers", "outside: the check needs a view from outside the host, or the controller's "
                                       "scanner (skipped when a host checks itself in pull mode)")


def _use_resolved_inventory(config: pytest.Config) -> None:
    """Hand testinfra the inventory verify resolved (``GOVBASELINE_INVENTORY``, in the form of
    ``ansible-inventory --list``) instead of letting it run ``ansible-inventory`` again in every checks
    process. ``AnsibleRunner.get_runner`` keeps one runner per ``--ansible-inventory`` path, and its
    ``inventory`` is a cached property: set, it is never computed; the path itself stays what Ansible
    reads where testinfra runs a command through Ansible. The runner's SSH hosts then run their
    commands through one session per host (``session.attach``)."""
    path = os.environ.get("GOVBASELINE_INVENTORY")
    if not path:
        return
    from testinfra.utils.ansible_runner import AnsibleRunner

    runner = AnsibleRunner.get_runner(config.getoption("ansible_inventory"))
    runner.__dict__["inventory"] = json.loads(Path(path).read_text())
    try:  # execnet is the controller's: a host checking itself in pull mode has its own packages
        from govbaseline.checks import session
    except ModuleNotFoundError as exc:
        if exc.name != "execnet":
            raise
        return
    session.attach(runner)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = sys.modules.get("govbaseline.checks.session")
    if session is not None:
        session.close_all()


def _controls(item: pytest.Item) -> list[str]:
    return [str(arg) for mark in item.iter_markers("control") for arg in mark.args]


def _applies(item: pytest.Item, ids: list[str]) -> bool:
    """Whether a check's controls concern its host: their roles are among those playbooks/site.yml
    gives the host's inventory groups (a backup server is not checked as a web server). A check
    marked ``@pytest.mark.role("backup")`` concerns that role's hosts instead, for a control two
    roles share (BAK-02: the client's check runs on web servers, the server's on backup servers)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "_testinfra_host" not in params or not os.environ.get("GOVBASELINE_HOSTVARS"):
        return True
    from govbaseline.catalogue import load_catalogue
    from govbaseline.validation import roles_for

    catalogue = load_catalogue()
    roles = set(roles_for(_hostvars_all()[host_name(params["_testinfra_host"])].get("group_names", [])))
    marked = [str(arg) for mark in item.iter_markers("role") for arg in mark.args]
    if marked:
        return bool(roles & set(marked))
    return any(catalogue.get(i).role in roles for i in ids if catalogue.has(i))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = {c.strip().upper() for c in config.getoption("--govbaseline-controls").split(",") if c.strip()}
    keep, drop = [], []
    for item in items:
        ids = _controls(item)
        if not ids:
            raise pytest.UsageError(f"check {item.nodeid} carries no control id (@pytest.mark.control)")
        (keep if (not wanted or wanted & set(ids)) and _applies(item, ids) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = _longest_first(keep)
    if not hasattr(config, "workerinput"):  # without xdist this process runs the checks and reports
        _progress.expect(config, [item.nodeid for item in items])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """With xdist, each worker collects (and sorts) the same checks; the controller counts them once."""
    _progress.expect(node.config, ids)


@dataclass
class Progress:
    """How many checks each host has, how many are done: a line when a host is done, and every
    PROGRESS_EVERY seconds how far each is. Counts only; the verdicts are the results file's."""

    enabled: bool = False
    expected: dict[str, int] | None = None
    done: dict[str, dict[str, int]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    said: float = field(default_factory=time.monotonic)

    def expect(self, config: pytest.Config, nodeids: list[str]) -> None:
        self.enabled = bool(config.getoption("--govbaseline-progress"))
        if not self.enabled or self.expected is not None:
            return
        hosts = [h.removeprefix("ansible://") for h in str(config.getoption("hosts") or "").split(",") if h]
        self.expected = {h: 0 for h in hosts}
        for nodeid in nodeids:
            param = nodeid.rpartition("[")[2]
            # testinfra's parameter id is ansible://<host>; the longest name that matches, so that
            # web1 does not take web10's checks.
            matching = [h for h in hosts if f"ansible://{h}" in param]
            if matching:
                self.expected[max(matching, key=len)] += 1
        total = sum(self.expected.values())
        self.say(f"{total} checks on {len(hosts)} hosts: " +
                 ", ".join(f"{h} {n}" for h, n in sorted(self.expected.items())))

    def finished(self, host: str, status: str) -> None:
        if not self.enabled:
            return
        counts = self.done.setdefault(host, {})
        counts[status] = counts.get(status, 0) + 1
        expected = (self.expected or {}).get(host, 0)
        if expected and sum(counts.values()) == expected:
            tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            self.say(f"{host}: done, {expected} checks: {tally} ({time.monotonic() - self.started:.0f} s)")
        elif time.monotonic() - self.said >= PROGRESS_EVERY:
            self.say("; ".join(f"{h} {sum(c.values())}/{(self.expected or {}).get(h, '?')}"
                               for h, c in sorted(self.done.items())) + " checks done")

    def say(self, line: str) -> None:
        self.said = time.monotonic()
        print(PROGRESS + line, file=sys.stderr, flush=True)


_progress = Progress()


def _longest_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The checks in the order of their seconds in earlier runs (``GOVBASELINE_CHECK_SECONDS``, kept
    by verify), longest first, a check not timed yet among the first: the workers start the waits
    (probes, scans, timeouts) at once and share the short checks at the end, so no worker is left
    alone with a long check while the others idle. Every worker sorts the same list the same way."""
    path = os.environ.get("GOVBASELINE_CHECK_SECONDS")
    seconds: dict[str, float] = json.loads(Path(path).read_text()) if path and Path(path).exists() else {}
    return sorted(items, key=lambda item: -seconds.get(getattr(item, "originalname", item.name), 1.0))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A check of a role switched off on its host is not applicable there (skipped, with the
    switch named); a host checking itself (pull mode) skips the checks marked ``outside``."""
    off = _switched_off(item)
    if off:
        pytest.skip(f"{SWITCHED_OFF}{off} is false on this host: the role is not applied, its controls are not "
                    "applicable here (and answer no clause)")
    if os.environ.get("GOVBASELINE_VANTAGE") == "host" and item.get_closest_marker("outside"):
        pytest.skip("needs a view from outside the host (or the controller's scanner): checked by "
                    "`govbaseline verify` from the controller, not by the host itself (pull mode)")


def _switched_off(item: pytest.Item) -> str | None:
    """``<role>_enabled`` of the role a check concerns, when that role is switched off on its host."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "_testinfra_host" not in params or not os.environ.get("GOVBASELINE_HOSTVARS"):
        return None
    from govbaseline.catalogue import load_catalogue

    values = _hostvars_all()[host_name(params["_testinfra_host"])]
    catalogue = load_catalogue()
    roles = [str(arg) for mark in item.iter_markers("role") for arg in mark.args] or \
        [catalogue.get(i).role for i in _controls(item) if catalogue.has(i)]
    off = [f"{role}_enabled" for role in roles if values.get(f"{role}_enabled", True) is False]
    return off[0] if off and len(off) == len(roles) else None


# -- facts the checks need -------------------------------------------------------------------


def _hostvars_all() -> dict[str, dict[str, Any]]:
    path = os.environ.get("GOVBASELINE_HOSTVARS")
    if not path:
        raise RuntimeError("GOVBASELINE_HOSTVARS is not set: run the checks through `govbaseline verify`")
    return _read_hostvars(path)


@functools.cache
def _read_hostvars(path: str) -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(Path(path).read_text())
    return data


def in_container(host: Any) -> str:
    """The engines' own answer (govbaseline.hostfacts.OBSERVE): the container's kind, or "" on a machine."""
    from govbaseline import hostfacts

    return str(hostfacts.parse(host.run(hostfacts.OBSERVE).stdout)["container"])


def host_name(host: Any) -> str:
    return str(getattr(host.backend, "host", None) or host.backend.get_hostname())


@pytest.fixture
def hostvars(host: Any) -> dict[str, Any]:
    """The host's variables as the engines applied them: for each of its roles the validated,
    type-converted values and the role's internal ones (``verify.applied_hostvars``), over the
    inventory's own variables. Checks read values and the role's paths and unit names here."""
    return dict(_hostvars_all()[host_name(host)])


@dataclass
class Probe:
    """Tries TCP connections to a host from outside it: from another inventory host, or the controller."""

    where: str
    remote: Any = None

    def connects(self, address: str, port: int, timeout: float = CONNECT_TIMEOUT) -> bool:
        if self.remote is None:
            try:
                with socket.create_connection((address, port), timeout=timeout):
                    return True
            except OSError:
                return False
        code = (
            "import socket,sys\n"
            "try:\n"
            f" socket.create_connection(({address!r},{int(port)}),timeout={timeout}).close()\n"
            "except OSError:\n sys.exit(1)\n"
        )
        return bool(self.remote.run("python3 -c %s", code).rc == 0)

    def run(self, command: str, *args: str) -> tuple[int, str]:
        """Run a shell command at the vantage point; return its exit code and combined output."""
        if self.remote is not None:
            # Exit 255 (e.g. from an ssh client run at the vantage point) would read as a failed
            # connection to the vantage point itself: report the code on stdout instead.
            out = self.remote.run(f"( {command} ) 2>&1; echo __rc=$?", *args)
            text, _, code = str(out.stdout).rpartition("__rc=")
            return int(code.strip() or 1), text
        import shlex
        import subprocess

        line = command % tuple(shlex.quote(a) for a in args) if args else command
        proc = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=60, check=False)  # noqa: S602
        return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def probe(request: pytest.FixtureRequest, host: Any, hostvars: dict[str, Any]) -> Probe:
    """Where reachability is tested from: ``govbaseline_probe_host`` if set, else the controller.
    A host checking itself (pull mode) is its own vantage point for what its services answer (TLS,
    headers, the WAF), but a check marked ``outside`` (what the firewall lets in, what the IDS sees on
    the wire) has no meaning there: it is skipped, and left to a verify from the controller."""
    if os.environ.get("GOVBASELINE_VANTAGE") == "host":
        return Probe("the host itself")
    name = hostvars.get("govbaseline_probe_host")
    if not name:
        return Probe(where="controller")
    return Probe(where=name, remote=other_host(request, host, name))


def other_host(request: pytest.FixtureRequest, host: Any, name: str) -> Any:
    """Another inventory host, for a check that must look from there; its commands are evidence too.
    A host checking itself (pull mode) reaches no other host: the check is skipped there."""
    import testinfra

    if os.environ.get("GOVBASELINE_VANTAGE") == "host":
        pytest.skip(f"needs {name}: checked by `govbaseline verify` from the controller, not by the host itself "
                    "(pull mode)")

    remote = testinfra.get_host(f"ansible://{name}", ansible_inventory=host.backend.ansible_inventory)
    records = getattr(request.node, "_govbaseline_records", None)
    if records is not None:
        original = remote.backend.run

        def recording_run(command: str, *args: Any, **kwargs: Any) -> Any:
            result = original(command, *args, **kwargs)
            records.append(_record(f"[at {name}] {remote.backend.get_command(command, *args)}", result.rc,
                                   result.stdout, result.stderr))
            return result

        remote.backend.run = recording_run
    return remote


def _record(command: str, rc: int, stdout: str, stderr: str = "") -> dict[str, Any]:
    return {"command": command, "rc": rc, "stdout": stdout[:EVIDENCE_LIMIT], "stderr": stderr[:EVIDENCE_LIMIT],
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Any:
    """Record what a check observed without a host command (e.g. a TLS scan from the controller)."""
    request.getfixturevalue("host")  # the evidence list belongs to the host's check

    def note(what: str, observed: str, ok: bool = True) -> None:
        request.node._govbaseline_records.append(_record(f"[controller] {what}", 0 if ok else 1, observed))

    return note


# -- evidence ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _evidence(request: pytest.FixtureRequest) -> Iterator[None]:
    if "host" not in request.fixturenames:
        yield
        return
    host = request.getfixturevalue("host")
    records: list[dict[str, Any]] = []
    original = host.backend.run

    def recording_run(command: str, *args: Any, **kwargs: Any) -> Any:
        started, clock = time.time(), time.monotonic()
        result = original(command, *args, **kwargs)
        records.append({
            "command": host.backend.get_command(command, *args),
            "rc": result.rc,
            "stdout": result.stdout[:EVIDENCE_LIMIT],
            "stderr": result.stderr[:EVIDENCE_LIMIT],
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.monotonic() - clock, 3),  # wall time on the controller, transport included
        })
        return result

    host.backend.run = recording_run
    request.node._govbaseline_records = records
    try:
        yield
    finally:
        host.backend.run = original
        request.node.user_properties.append(("evidence", records))
        request.node.user_properties.append(("host", host_name(host)))


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    if call.when == "setup":
        item.user_properties.append(("controls", _controls(item)))
        item.user_properties.append(("check", getattr(item, "originalname", item.name)))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "_testinfra_host" in params:
            item.user_properties.append(("host", host_name(params["_testinfra_host"])))


_results: dict[str, dict[str, Any]] = {}


def _message(report: pytest.TestReport) -> str:
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        return str(crash.message if crash is not None else report.longreprtext)[:2000]
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    return ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep one result per check and host; xdist interleaves workers, so key by node id."""
    props = dict(report.user_properties)
    entry = _results.setdefault(report.nodeid, {
        "nodeid": report.nodeid, "check": props.get("check", report.nodeid),
        "controls": props.get("controls", []), "host": props.get("host", "?"),
        "status": "error", "message": "", "duration": 0.0, "evidence": []})
    if report.when == "call" or (report.when == "setup" and not report.passed):
        entry["status"] = "pass" if report.passed else "skipped" if report.skipped else (
            "fail" if report.when == "call" else "error")
        entry["message"] = _message(report)
        entry["duration"] = round(report.duration, 3)
    elif report.when == "teardown" and report.failed and entry["status"] == "pass":
        entry["status"], entry["message"] = "error", _message(report)
    entry["evidence"] = props.get("evidence", entry["evidence"])
    entry["host"] = props.get("host", entry["host"])
    if report.when == "teardown":
        _progress.finished(entry["host"], entry["status"])


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return
    path = session.config.getoption("--govbaseline-results")
    if path:
        Path(path).write_text(json.dumps(list(_results.values()), indent=1))
