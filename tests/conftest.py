"""Shared fixtures: lab hosts for the end-to-end tests (skipped with GOVBASELINE_SKIP_LAB=1)."""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict

import pytest

# Tests sharing a lab (a session or module fixture named ``*_lab``: ansible_lab, pyinfra_lab, v6_lab)
# run in one pytest-xdist worker (scripts/test.sh runs two with --dist loadgroup): a second worker
# would create the same-named lab and clear the first's hosts. A test that asks for its lab by name
# at run time carries the group itself (test_patching_e2e.py).
SHARED_LABS = ("ansible_lab", "pyinfra_lab")
# The lab groups and the tests with a lab of their own that take longest, longest first (the tables
# at the end of a run show them): they are handed to the workers first and the short tests fill in
# around them, so neither worker is left with a long one at the end (scripts/test.sh keeps this
# order: --no-loadscope-reorder). A name here that no longer exists only loses its place.
HEAVIEST_FIRST = ("ansible_lab", "vm_lab", "pyinfra_lab", "pull_lab", "v6_lab",
                  "test_an_ops_team_installs_the_package_and_runs_from_its_own_repository",
                  "test_history_gathers_the_hosts_records_and_inspection_counts_them",
                  "test_debian12_host_converges_idempotently_and_verifies",
                  "templates")  # tests/unit/test_templates.py: 90 s of Ansible rendering, not to come last


def lab_group(fixturenames: list[str] | tuple[str, ...]) -> str | None:
    """The xdist group of a test: the shared session labs first, then any other lab fixture."""
    labs = [f for f in SHARED_LABS if f in fixturenames] or sorted(f for f in fixturenames if f.endswith("_lab"))
    return labs[0] if labs else None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        group = lab_group(tuple(getattr(item, "fixturenames", ())))
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_weight)
    if os.environ.get("GOVBASELINE_SKIP_LAB") == "1":
        skip = pytest.mark.skip(reason="GOVBASELINE_SKIP_LAB=1")
        for item in items:
            if "lab" in item.keywords:
                item.add_marker(skip)


def _weight(item: pytest.Item) -> int:
    """Where an item goes in the run: the heaviest groups and tests, then the other lab tests, then
    the rest."""
    groups = {m.args[0] if m.args else m.kwargs.get("name") for m in item.iter_markers("xdist_group")}
    if len(groups) == 1 and (group := groups.pop()) in HEAVIEST_FIRST:  # pytest-xdist joins several
        return HEAVIEST_FIRST.index(group)
    name = getattr(item, "originalname", item.name)  # without its parameters
    if name in HEAVIEST_FIRST:
        return HEAVIEST_FIRST.index(name)
    return len(HEAVIEST_FIRST) + (0 if "lab" in item.keywords else 1)


_clock: dict[str, float] = {}  # when the run started, and when each worker last reported
_last: dict[str, str] = {}  # each worker's last test


def pytest_sessionstart(session: pytest.Session) -> None:
    _clock["start"] = time.monotonic()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    worker = getattr(getattr(report, "node", None), "gateway", None)
    if worker is not None:
        _clock[worker.id], _last[worker.id] = time.monotonic(), report.nodeid


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Seconds spent in each test file (setup, call and teardown; a session lab's converge counts in
    the file of the first test that needed it), slowest first: where the suite's time goes. Under
    pytest-xdist also the seconds of each lab group and of each worker: a worker busy much longer
    than the other shows a group that started too late (scripts/test.sh orders the heaviest first)."""
    per_file: defaultdict[str, float] = defaultdict(float)
    per_group: defaultdict[str, float] = defaultdict(float)
    per_worker: defaultdict[str, float] = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            if isinstance(report, pytest.TestReport):
                per_file[report.nodeid.split("::")[0]] += report.duration
                name = report.nodeid.rsplit("::", 1)[-1]
                if name.rfind("@") > name.rfind("]"):  # pytest-xdist's own test@group suffix
                    per_group[name.rsplit("@", 1)[1]] += report.duration
                worker = getattr(getattr(report, "node", None), "gateway", None)
                if worker is not None:
                    per_worker[worker.id] += report.duration
    if not per_file:
        return
    for title, table in (("seconds per test file", per_file), ("seconds per lab group", per_group),
                         ("seconds per worker (busy, done at; its last test)", per_worker)):
        if table:
            terminalreporter.write_sep("=", title)
            for name, seconds in sorted(table.items(), key=lambda item: -item[1]):
                done = f"{_clock[name] - _clock['start']:9.1f}  {_last[name]}" if name in _last else ""
                terminalreporter.write_line(f"{seconds:9.1f}  {name}{done}")
        if table is per_file:
            terminalreporter.write_line(f"{sum(per_file.values()):9.1f}  total (test time; two workers overlap)")


@pytest.fixture(autouse=True)
def _blocking_stdin():
    """Each test starts with a blocking stdin: ssh makes its stdin non-blocking and one that is
    killed leaves it so, and the Ansible tools a test runs refuse a non-blocking stdin."""
    with contextlib.suppress(OSError):  # no stdin at all
        os.set_blocking(0, True)
