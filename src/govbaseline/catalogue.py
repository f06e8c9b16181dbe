"""The control catalogue: load it, look controls up, print it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import yaml

from govbaseline.paths import CATALOGUE_FILE

STATUSES = ("implemented", "planned")


@dataclass(frozen=True)
class Clause:
    id: str
    quote: str
    server: bool
    why: str = ""

    @property
    def policy(self) -> str:
        return self.id.split(":", 1)[0]


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    clauses: list[str]
    iso27001: list[str]
    role: str
    checks: list[str]
    status: str
    # CIS Debian Linux Benchmark sections the control implements, each naming the benchmark and its
    # version, e.g. "CIS Debian Linux 12 Benchmark v1.1.0 3.3 Configure Network Kernel Parameters".
    cis: list[str] = field(default_factory=list)
    # Why the control answers no policy clause (none of the policies asks for it): it stands on the
    # CIS benchmark alone. Empty for a control that answers clauses.
    unasked: str = ""
    # The govbaseline command that enforces a control no role carries (its ``role`` is empty), e.g.
    # ``inspection`` for the self-inspection report: there is nothing to apply or check on a host.
    command: str = ""

    @property
    def tag(self) -> str:
        """The Ansible tag carrying this control, e.g. ``fw-01``."""
        return self.id.lower()


@dataclass
class Catalogue:
    clauses: list[Clause] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)

    def has(self, control_id: str) -> bool:
        return any(c.id == control_id for c in self.controls)

    def get(self, control_id: str) -> Control:
        for control in self.controls:
            if control.id == control_id:
                return control
        raise KeyError(f"no control {control_id!r} in the catalogue")

    def answering(self, clause_id: str) -> list[Control]:
        return [c for c in self.controls if clause_id in c.clauses]

    def as_dict(self) -> dict[str, Any]:
        return {"clauses": [asdict(c) for c in self.clauses], "controls": [asdict(c) for c in self.controls]}


@cache
def load_catalogue() -> Catalogue:
    data = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    return Catalogue(
        clauses=[Clause(**c) for c in data["clauses"]],
        controls=[Control(**c) for c in data["controls"]],
    )


CIS_BENCHMARK = re.compile(r"^CIS .*? Benchmark v[\d.]+,? ")


def cis_section(ref: str) -> str:
    """A CIS reference as short as a table column wants it: its section number ("3.3"), or for a
    reference in words its title without the explanation ("System Auditing")."""
    section = CIS_BENCHMARK.sub("", ref)
    number = re.match(r"\d+(\.\d+)*\b", section)
    return number.group(0) if number else section.split(" (", 1)[0]


def render_table(catalogue: Catalogue) -> str:
    rows = [("ID", "STATUS", "ROLE", "CHECKS", "ISO 27001", "CIS", "TITLE")]
    rows += [(c.id, c.status, c.role or f"({c.command})", str(len(c.checks)), ",".join(c.iso27001),
              ", ".join(cis_section(ref) for ref in c.cis) or "-", c.title) for c in catalogue.controls]
    last = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(last)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(last)) + "  " + r[last] for r in rows]
    answered = sum(1 for c in catalogue.clauses if c.server)
    benchmarks = sorted({CIS_BENCHMARK.match(ref).group(0).rstrip(", ")  # type: ignore[union-attr]
                         for c in catalogue.controls for ref in c.cis if CIS_BENCHMARK.match(ref)})
    unasked = sum(1 for c in catalogue.controls if not c.clauses and c.unasked)
    lines.append(f"\n{len(catalogue.controls)} controls "
                 f"({sum(c.status == 'implemented' for c in catalogue.controls)} implemented); "
                 f"{answered} policy clauses a server can satisfy, all answered"
                 + (f"; {unasked} controls no clause asks for, on the CIS benchmark alone" if unasked else "") + "."
                 + (f"\nCIS: {', '.join(benchmarks)}." if benchmarks else ""))
    return "\n".join(lines)
