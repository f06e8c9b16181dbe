"""``govbaseline demo``: a disposable lab host gets the baseline, is verified, and a report is written."""

from __future__ import annotations

from pathlib import Path

from govbaseline.engines import apply
from govbaseline.lab import Lab
from govbaseline.lab.image import DEFAULT_DISTRO
from govbaseline.verify import verify


def demo(report_dir: Path, engine: str = "ansible", distro: str = DEFAULT_DISTRO, vm: bool = False) -> int:
    """Start two lab web servers (``vm``: virtual machines) and the sink, apply the baseline, verify,
    write the report; returns verify's exit code (1 when apply or a check failed)."""
    lab = Lab("demo", distro=distro)
    kind = "virtual machines" if vm else "hosts"
    print(f"demo: starting 2 lab {kind} ({distro}) ...", flush=True)
    hosts = lab.up(2, vm=vm)
    print("demo: " + ", ".join(f"{h.name} at {h.address}" for h in hosts), flush=True)
    print(f"demo: applying the baseline with {engine} ...", flush=True)
    result = apply(lab.inventory, engine=engine)
    if not result.ok:
        print(f"demo: apply failed (exit {result.returncode}); the hosts are kept for inspection "
              f"(`govbaseline lab status --name demo`)")
        return 1
    print("demo: verifying ...", flush=True)
    outcome = verify(lab.inventory, report_dir=report_dir)
    print(f"demo: {outcome.summary_line()}")
    print(f"demo: report written to {(report_dir / 'report.html').resolve()} (also report.json, junit.xml)")
    print("demo: remove the hosts with `govbaseline lab down --name demo`")
    return 0 if outcome.passed else 1
