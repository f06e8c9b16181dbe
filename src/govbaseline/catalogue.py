"""The control catalogue: load it, look controls up, print it."""

from __future__ import annotations

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


def render_table(catalogue: Catalogue) -> str:
    rows = [("ID", "STATUS", "ROLE", "CHECKS", "TITLE")]
    rows += [(c.id, c.status, c.role, str(len(c.checks)), c.title) for c in catalogue.controls]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    answered = sum(1 for c in catalogue.clauses if c.server)
    lines.append(f"\n{len(catalogue.controls)} controls "
                 f"({sum(c.status == 'implemented' for c in catalogue.controls)} implemented); "
                 f"{answered} policy clauses a server can satisfy, all answered.")
    return "\n".join(lines)
