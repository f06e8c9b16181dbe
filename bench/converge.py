"""Benchmark: first converge, no-change re-converge and verify, per engine, on fresh lab hosts.

For each engine a fresh lab (one web server and the backup server, from the lab image) is converged
once, re-converged ``--runs`` times with nothing to change (the median is printed) and verified.
Prints seconds, the tasks (Ansible: tasks reached and tasks that ran on a host) or operations
(pyinfra) and seconds per task, the pyinfra/Ansible ratio of each step, the issue-18 targets, and
the ten slowest tasks of an Ansible re-converge (from the run's events: ``EngineResult.tasks()``).

Run: .venv/bin/python bench/converge.py [--hosts 1] [--runs 3]
Figures from one run on a shared machine are noisy: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from govbaseline.engines import EngineResult, apply, changed_count
from govbaseline.lab import Lab
from govbaseline.verify import verify

TARGETS = {"first converge": 90.0, "re-converge": 30.0}  # Ansible seconds, issue 18


def timed_apply(lab: Lab, engine: str) -> tuple[float, EngineResult, list[dict[str, Any]]]:
    """One converge; for Ansible also the per-task seconds from its events."""
    start = time.perf_counter()
    result = apply(lab.inventory, engine=engine, stream=False)
    took = time.perf_counter() - start
    assert result.ok, result.output[-3000:]
    return took, result, result.tasks()


def units(engine: str, result: EngineResult, tasks: list[dict[str, Any]]) -> tuple[int, str]:
    """(count, description): Ansible tasks that ran on a host (of those reached), pyinfra operations."""
    if engine == "ansible":
        ran = sum(1 for t in tasks if t["ran"])
        return ran, f"{ran} tasks ran ({len(tasks)} reached)"
    ops = sum(int(n) for n in re.findall(r"Grand total\s+(\d+)", result.output))
    return ops, f"{ops} operations"


def measure(engine: str, hosts: int, runs: int) -> dict[str, Any]:
    lab = Lab(f"bench-{engine}")
    lab.up(hosts)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            first, r1, t1 = timed_apply(lab, engine)
            again = [timed_apply(lab, engine) for _ in range(runs)]
            for _, result, _ in again:
                assert changed_count(result) == 0, f"a re-converge changed something:\n{result.output[-3000:]}"
            median = sorted(again, key=lambda run: run[0])[len(again) // 2]
            start = time.perf_counter()
            outcome = verify(lab.inventory, Path(tmp) / "report")
            check = time.perf_counter() - start
            assert outcome.passed, outcome.summary_line()
        return {"first converge": (first, *units(engine, r1, t1)),
                "re-converge": (statistics.median(r[0] for r in again), *units(engine, median[1], median[2])),
                "verify": (check, len(outcome.results), f"{len(outcome.results)} checks"),
                "slowest": sorted(median[2], key=lambda t: -t["seconds"])[:10]}
    finally:
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1, help="web servers in each lab (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="no-change re-converges per engine (median printed)")
    args = parser.parse_args()
    results = {engine: measure(engine, args.hosts, args.runs) for engine in ("ansible", "pyinfra")}
    a_all, p_all = results["ansible"], results["pyinfra"]
    print(f"\n{args.hosts} web server(s) and the backup server, fresh lab hosts; re-converge: median of {args.runs}")
    print(f"{'step':<16}{'ansible s':>10}{'s/task':>8}{'pyinfra s':>11}{'s/op':>7}"
          f"{'pyinfra/ansible':>17}   units")
    for step in ("first converge", "re-converge", "verify"):
        (a, an, adesc), (p, pn, pdesc) = a_all[step], p_all[step]
        per_a = f"{a / an:.2f}" if an and step != "verify" else "-"
        per_p = f"{p / pn:.2f}" if pn and step != "verify" else "-"
        print(f"{step:<16}{a:>10.1f}{per_a:>8}{p:>11.1f}{per_p:>7}{p / a:>17.2f}   "
              f"ansible: {adesc}; pyinfra: {pdesc}")
    print("\ntargets (issue 18):")
    for step, limit in TARGETS.items():
        seconds = a_all[step][0]
        verdict = "met" if seconds <= limit else "MISSED"
        print(f"  ansible {step:<15} {seconds:6.1f} s  at most {limit:.0f} s: {verdict}")
    ratio = p_all["re-converge"][0] / a_all["re-converge"][0]
    print(f"  pyinfra re-converge / ansible  {ratio:5.2f}    at most 0.33: {'met' if ratio <= 1 / 3 else 'MISSED'}")
    print("\nten slowest tasks of an Ansible re-converge (seconds, items run on hosts):")
    for task in a_all["slowest"]:
        print(f"  {task['seconds']:5.2f}  {task['ran']:>3}  {task['name']}")


if __name__ == "__main__":
    main()
