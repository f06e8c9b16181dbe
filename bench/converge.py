"""Benchmark: first converge, no-change re-converge and verify, per engine, on fresh lab hosts.

Prints wall-clock seconds and the pyinfra/Ansible ratio. Run: .venv/bin/python bench/converge.py
Figures from one run on a shared machine are noisy: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from govbaseline.engines import apply
from govbaseline.lab import Lab
from govbaseline.verify import verify


def timed(func):
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def measure(engine: str, hosts: int) -> dict[str, float]:
    lab = Lab(f"bench-{engine}")
    lab.up(hosts)
    try:
        first, r1 = timed(lambda: apply(lab.inventory, engine=engine, stream=False))
        again, r2 = timed(lambda: apply(lab.inventory, engine=engine, stream=False))
        assert r1.ok and r2.ok, (r1.output + r2.output)[-2000:]
        with tempfile.TemporaryDirectory() as tmp:
            check, outcome = timed(lambda: verify(lab.inventory, Path(tmp)))
        assert outcome.passed, outcome.output[-2000:]
        return {"first converge": first, "re-converge": again, "verify": check}
    finally:
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=2)
    args = parser.parse_args()
    results = {engine: measure(engine, args.hosts) for engine in ("ansible", "pyinfra")}
    print(f"{'step':<16}{'ansible s':>12}{'pyinfra s':>12}{'pyinfra/ansible':>18}   ({args.hosts} hosts)")
    for step in results["ansible"]:
        a, p = results["ansible"][step], results["pyinfra"][step]
        print(f"{step:<16}{a:>12.2f}{p:>12.2f}{p / a:>18.2f}")


if __name__ == "__main__":
    main()
