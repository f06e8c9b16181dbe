"""Benchmark: `govbaseline verify` of 1, 5 and 20 converged web servers, next to Lynis on the same
hosts in the same run.

One lab of the largest size is converged once (Ansible) and left to settle (the first backups, scans
and audits the converge starts). Each size verifies the first N web servers (--limit) at verify's
default forks, twice (the first run only warms the order of the checks, like any second verify);
then `lynis audit system --quick` runs on the same N hosts, as many at a time. Prints seconds, checks
and commands run, the verify/Lynis ratio, how the time grows with the hosts, and the issue-18
targets. Run: .venv/bin/python bench/verify.py [--sizes 1,5,20]
Figures from one run on a shared machine are noisy: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import inspect
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from govbaseline.engines import apply
from govbaseline.lab import Lab
from govbaseline.verify import verify

DEFAULT_FORKS = int(inspect.signature(verify).parameters["forks"].default)


def lynis_all(lab: Lab, hosts: list, forks: int) -> float:
    def audit(host) -> None:
        done = lab.exec(host, "lynis", "audit", "system", "--quick", "--no-colors", "--no-log",
                        "--report-file", "/dev/null", check=False)
        assert done.returncode == 0, done.stderr.decode()[-1000:]

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=forks) as pool:
        list(pool.map(audit, hosts))
    return time.perf_counter() - start


def settle(lab: Lab, hosts: list, timeout: float = 900) -> float:
    """Wait until no host has a systemd job queued or running (the first backups, scans and audits
    that a converge starts), so the first measurement is not a cold start; return the seconds waited."""
    start = time.perf_counter()
    pending = list(hosts)
    while pending and time.perf_counter() - start < timeout:
        pending = [h for h in pending
                   if lab.exec(h, "systemctl", "list-jobs", "--no-legend", check=False).stdout.strip()]
        if pending:
            time.sleep(5)
    return time.perf_counter() - start


def timed_verify(lab: Lab, names: list[str], forks: int) -> tuple[float, int, int, list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        outcome = verify(lab.inventory, Path(tmp), forks=forks, limit=",".join(names))
        took = time.perf_counter() - start
    summary = outcome.data["summary"]
    assert summary["hosts"] == len(names) and not summary["unreachable"], outcome.summary_line()
    assert outcome.passed, outcome.summary_line()
    commands = sum(len(r["evidence"]) for r in outcome.results)
    return took, len(outcome.results), commands, outcome.results


def slowest(results: list[dict[str, Any]], count: int = 10) -> None:
    """Print the ``count`` longest checks and host commands of a run (seconds; a command's seconds are
    seen from the controller, transport included), so a reader sees where the next second is."""
    print(f"\nthe {count} longest checks of a one-host run (seconds, commands):")
    for result in sorted(results, key=lambda r: -r["duration"])[:count]:
        print(f"  {result['duration']:5.2f}  {len(result['evidence']):>3}  {result['check']}")
    commands = [(e.get("seconds", 0.0), " ".join(e["command"].split())[:90], r["check"])
                for r in results for e in r["evidence"]]
    print(f"the {count} longest commands (seconds, command, check):")
    for seconds, command, check in sorted(commands, key=lambda c: -c[0])[:count]:
        print(f"  {seconds:5.2f}  {command}  [{check}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,5,20", help="web server counts to measure (default: %(default)s)")
    parser.add_argument("--forks", type=int, default=DEFAULT_FORKS,
                        help="checks (and Lynis audits) run at once (default: verify's, %(default)s)")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    lab = Lab("bench-verify")
    lab.up(max(sizes))
    try:
        converged = apply(lab.inventory, engine="ansible", stream=False)
        assert converged.ok, converged.output[-3000:]
        web = [h for h in lab.hosts() if h.kind == "web"]
        print(f"converged {len(web)} web servers; settled after {settle(lab, lab.hosts()):.0f} s", flush=True)
        rows = []
        for size in sizes:
            names = [h.name for h in web[:size]]
            timed_verify(lab, names, args.forks)  # warms the longest-first order, as any earlier run does
            took, checks, commands, results = timed_verify(lab, names, args.forks)
            rows.append((size, took, checks, commands, lynis_all(lab, web[:size], args.forks), results))
            print(f"  {size} hosts: verify {took:.1f} s", flush=True)
    finally:
        lab.down()
    base = rows[0][1] / rows[0][0]
    print(f"\n{'hosts':>6}{'verify s':>10}{'s/host':>8}{'growth':>8}{'checks':>8}{'commands':>10}{'lynis s':>9}"
          f"{'verify/lynis':>14}   (forks {args.forks})")
    for size, took, checks, commands, lynis, _ in rows:
        print(f"{size:>6}{took:>10.1f}{took / size:>8.2f}{took / size / base:>8.2f}{checks:>8}{commands:>10}"
              f"{lynis:>9.1f}{took / lynis:>14.2f}")
    print("growth: seconds per host relative to the smallest size (below 1: less than linear)")
    one = next((r for r in rows if r[0] == 1), None)
    twenty = next((r for r in rows if r[0] == 20), None)
    print("\ntargets (issue 18):")
    if one:
        print(f"  one host {one[1]:.1f} s, at most 3 s: {'met' if one[1] <= 3 else 'MISSED'}; "
              f"{one[4] / one[1]:.1f}x faster than Lynis, at least 10x: {'met' if one[4] >= 10 * one[1] else 'MISSED'}")
    if twenty:
        print(f"  20 hosts {twenty[1]:.1f} s, at most 30 s: {'met' if twenty[1] <= 30 else 'MISSED'}")
    slowest(rows[0][5])


if __name__ == "__main__":
    main()
