"""Benchmark: `govbaseline verify` over 1, 5 and 20 converged lab hosts, next to a Lynis audit of the
same hosts run with the same parallelism.

One lab with the largest size is converged once (Ansible); each size verifies the first N hosts
(--limit) and runs `lynis audit system --quick` on the same N hosts, `--forks` at a time. Prints
wall-clock seconds and the verify/Lynis ratio. Run: .venv/bin/python bench/verify.py [--sizes 1,5,20]
Figures from one run on a shared machine are noisy: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from govbaseline.engines import apply
from govbaseline.lab import Lab
from govbaseline.verify import verify


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,5,20", help="host counts to measure (default: %(default)s)")
    parser.add_argument("--forks", type=int, default=4, help="checks (and Lynis audits) run at once")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    lab = Lab("bench-verify")
    lab.up(max(sizes))
    try:
        converged = apply(lab.inventory, engine="ansible", stream=False)
        assert converged.ok, converged.output[-3000:]
        print(f"converged {max(sizes)} hosts; settled after {settle(lab, lab.hosts()):.0f} s", flush=True)
        rows = []
        for size in sizes:
            hosts = lab.hosts()[:size]
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                outcome = verify(lab.inventory, Path(tmp), forks=args.forks, limit=",".join(h.name for h in hosts))
                took = time.perf_counter() - start
            assert outcome.data["summary"]["hosts"] == size and not outcome.data["summary"]["unreachable"], \
                outcome.summary_line()
            rows.append((size, took, lynis_all(lab, hosts, args.forks), outcome.summary_line()))
    finally:
        lab.down()
    print(f"{'hosts':>6}{'verify s':>12}{'lynis s':>12}{'verify/lynis':>15}   (forks {args.forks})")
    for size, took, lynis, summary in rows:
        print(f"{size:>6}{took:>12.1f}{lynis:>12.1f}{took / lynis:>15.2f}   {summary}")


if __name__ == "__main__":
    main()
