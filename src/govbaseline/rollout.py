"""Safe rollout: apply to a few canary hosts, verify them, then continue in batches.

The hosts that serve the web servers (a backup server, anything outside ``webservers``) go with the
canary batch, so the canaries find what they depend on. Each batch is applied with the chosen
engine and verified; the rollout stops at the first batch that fails to apply or to verify, and the
hosts after it are left as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from govbaseline.engines import apply
from govbaseline.inventory import select
from govbaseline.verify import verify
from govbaseline.waivers import Waiver, check_scope

WEB_GROUP = "webservers"


@dataclass
class Batch:
    number: int
    hosts: list[str]
    report_dir: Path
    applied: bool = False
    verified: bool = False
    problem: str = ""


@dataclass
class Rollout:
    batches: list[Batch] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(b.applied and b.verified for b in self.batches) and not self.untouched


def plan(hosts: list[str], web: list[str], canary: int, batch_size: int) -> list[list[str]]:
    """Batches in order: the supporting hosts and the first ``canary`` web servers, then the other
    web servers ``batch_size`` at a time."""
    if canary < 1 or batch_size < 1:
        raise ValueError(f"canary and batch size must be at least 1 (canary {canary}, batch size {batch_size})")
    supporting = [h for h in hosts if h not in web]
    batches = [supporting + web[:canary]]
    rest = web[canary:]
    batches += [rest[i:i + batch_size] for i in range(0, len(rest), batch_size)]
    return [b for b in batches if b]


def rollout(inventory: Path, canary: int, batch_size: int, report_dir: Path, engine: str = "ansible",
            limit: str | None = None, forks: int = 4, say: Callable[[str], None] = print,
            waivers: list[Waiver] | None = None, artifact_dir: Path | None = None) -> Rollout:
    selection = select(inventory, limit).refuse_empty()  # no batch would run, and all would be "done"
    if waivers:
        check_scope(waivers, selection.fleet)  # before the first batch changes anything
    resolved = selection.hosts
    hosts = sorted(resolved.hostvars)
    web = [h for h in hosts if WEB_GROUP in resolved.groups_of(h)]
    batches = plan(hosts, web, canary, batch_size)
    result = Rollout()
    for number, members in enumerate(batches, start=1):
        batch = Batch(number, members, report_dir / f"batch-{number:02d}")
        result.batches.append(batch)
        label = "canary batch" if number == 1 else f"batch {number}/{len(batches)}"
        say(f"rollout: {label}: applying to {', '.join(members)}")
        narrowed = selection.narrowed(members)
        applied = apply(inventory, engine=engine, stream=False, waivers=waivers, selection=narrowed,
                        artifact_dir=artifact_dir)
        batch.applied = applied.ok
        if not applied.ok:
            batch.problem = f"{engine} failed (exit {applied.returncode}):\n{applied.output[-3000:]}"
        else:
            outcome = verify(inventory, report_dir=batch.report_dir, forks=forks, waivers=waivers,
                             selection=narrowed)
            batch.verified = outcome.passed
            if not outcome.passed:
                failed = sorted({f"{h}: {c}" for h, data in outcome.data["hosts"].items()
                                 for c, control in data["controls"].items() if control["status"] in ("fail", "error")}
                                | {f"{h}: unreachable" for h in outcome.data["summary"]["unreachable"]})
                batch.problem = "verification failed: " + "; ".join(failed)
        if batch.problem:
            result.untouched = [h for later in batches[number:] for h in later]
            say(f"rollout: {label} stopped the rollout: {batch.problem}")
            if result.untouched:
                say(f"rollout: left as they were: {', '.join(result.untouched)}")
            return result
        say(f"rollout: {label} applied and verified (report: {batch.report_dir / 'report.html'})")
    return result
