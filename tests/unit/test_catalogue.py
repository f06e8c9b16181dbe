"""The catalogue is total over the policies, and every implemented control is carried end to end."""

from __future__ import annotations

import importlib
import re

import pytest

from govbaseline.catalogue import STATUSES, load_catalogue
from govbaseline.paths import PACKAGE_DIR, ROLES_DIR
from tests.paths import POLICIES_DIR

CATALOGUE = load_catalogue()


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_ids_are_unique_and_well_formed():
    ids = [c.id for c in CATALOGUE.controls]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[A-Z]+-\d\d", i) for i in ids), ids
    clause_ids = [c.id for c in CATALOGUE.clauses]
    assert len(clause_ids) == len(set(clause_ids))
    assert all(c.status in STATUSES for c in CATALOGUE.controls)


@pytest.mark.skipif(not POLICIES_DIR.is_dir(), reason=f"policies not found at {POLICIES_DIR}")
def test_every_clause_quotes_its_policy():
    for clause in CATALOGUE.clauses:
        path = POLICIES_DIR / f"{clause.policy}.txt"
        assert path.exists(), f"{clause.id}: no policy file {path.name}"
        assert normalise(clause.quote) in normalise(path.read_text(encoding="utf-8")), (
            f"{clause.id}: quote not found in {path.name}: {clause.quote!r}")


@pytest.mark.skipif(not POLICIES_DIR.is_dir(), reason=f"policies not found at {POLICIES_DIR}")
def test_every_policy_is_in_the_catalogue():
    stems = {p.name[: -len(".txt")] for p in POLICIES_DIR.glob("*.txt")}
    assert stems == {c.policy for c in CATALOGUE.clauses}


def test_mapping_is_total():
    """Every clause a server can satisfy is answered by a control; every cited clause exists."""
    known = {c.id for c in CATALOGUE.clauses}
    for control in CATALOGUE.controls:
        unknown = set(control.clauses) - known
        assert not unknown, f"{control.id} cites unknown clauses {unknown}"
    unanswered = [c.id for c in CATALOGUE.clauses if c.server and not CATALOGUE.answering(c.id)]
    assert not unanswered, f"clauses no control answers: {unanswered}"
    unexplained = [c.id for c in CATALOGUE.clauses if not c.server and not c.why]
    assert not unexplained, f"clauses marked not-for-a-server without a reason: {unexplained}"


IMPLEMENTED = [c for c in CATALOGUE.controls if c.status == "implemented" and not c.command]
COMMANDS = [c for c in CATALOGUE.controls if c.command]


def test_a_control_has_a_role_or_a_command():
    for control in CATALOGUE.controls:
        assert bool(control.role) != bool(control.command), f"{control.id}: give a role or a command, not both"


@pytest.mark.parametrize("control", COMMANDS, ids=lambda c: c.id)
def test_command_control_is_a_command_of_the_cli(control):
    """A control a command enforces (REP-01: `govbaseline inspection`) has that command, and no
    role tasks or host checks: it is proved by the command's own tests."""
    from govbaseline.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert control.command in commands, f"{control.id}: no command `govbaseline {control.command}`"
    assert control.status == "implemented" and not control.checks


@pytest.mark.parametrize("control", IMPLEMENTED, ids=lambda c: c.id)
def test_implemented_control_has_role_task_and_deploy(control):
    tasks = "".join(p.read_text() for p in (ROLES_DIR / control.role / "tasks").glob("*.yml"))
    ids = rf"(?:[A-Z]+-\d\d, )*{control.id}(?:, [A-Z]+-\d\d)*"
    assert re.search(rf'name: "?{ids} \|', tasks), f"no task of role {control.role} carries {control.id}"
    assert control.tag in tasks, f"no task of role {control.role} is tagged {control.tag}"
    deploy = (PACKAGE_DIR / "deploys" / f"{control.role}.py").read_text()
    assert re.search(rf'"{ids} \|', deploy), f"the pyinfra deploy {control.role}.py has no {control.id} operation"


@pytest.mark.parametrize("control", IMPLEMENTED, ids=lambda c: c.id)
def test_implemented_control_has_marked_checks(control):
    assert control.checks, f"{control.id} lists no checks"
    for ref in control.checks:
        module_name, func = ref.split("::")
        module = importlib.import_module(f"govbaseline.checks.{module_name}")
        check = getattr(module, func, None)
        assert check is not None, f"{control.id}: check {ref} does not exist"
        marks = [m.args[0] for m in getattr(check, "pytestmark", []) if m.name == "control"]
        assert control.id in marks, f"{ref} is not marked @pytest.mark.control({control.id!r})"


def test_every_check_is_listed_in_the_catalogue():
    listed = {ref for c in CATALOGUE.controls for ref in c.checks}
    for path in (PACKAGE_DIR / "checks").glob("test_*.py"):
        module = importlib.import_module(f"govbaseline.checks.{path.stem}")
        for name in dir(module):
            if name.startswith("test_"):
                assert f"{path.stem}::{name}" in listed, f"check {path.stem}::{name} is in no control"


# Issue 21: every implemented control carries a CIS reference eventually; these roles' already do.
CIS_ROLES = ("system",)


@pytest.mark.parametrize("control", [c for c in IMPLEMENTED if c.role in CIS_ROLES], ids=lambda c: c.id)
def test_implemented_control_of_the_os_roles_cites_the_cis_benchmark(control):
    assert control.cis, f"{control.id} cites no CIS Debian Linux Benchmark section"


def test_cis_references_name_the_benchmark_and_its_version():
    wrong = [(c.id, ref) for c in CATALOGUE.controls for ref in c.cis
             if not re.match(r"CIS Debian Linux 1[23] Benchmark v\d+\.\d+\.\d+,? \S", ref)]
    assert not wrong, f"CIS references must start with the benchmark and its version: {wrong}"


def test_a_control_answering_no_clause_says_why_and_cites_cis():
    for control in CATALOGUE.controls:
        if control.clauses:
            assert not control.unasked, f"{control.id} answers clauses and says no clause asks for it"
        else:
            assert control.unasked.strip(), f"{control.id} answers no clause: say why in unasked"
            assert control.cis, f"{control.id} answers no clause: it must cite the CIS benchmark it stands on"


def test_the_controls_table_shows_iso_and_cis():
    from govbaseline.catalogue import render_table

    table = render_table(CATALOGUE)
    assert "ISO 27001" in table.splitlines()[0] and "CIS" in table.splitlines()[0]
    row = next(line for line in table.splitlines() if line.startswith("SYS-01 "))
    assert "A.8.20" in row and " 3.3 " in row, row
