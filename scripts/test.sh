#!/usr/bin/env bash
# The whole test suite: linters, unit tests, then end-to-end tests on lab hosts.
# Set GOVBASELINE_SKIP_LAB=1 to run only what needs no lab host.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

echo "== ruff";        ruff check src tests bench
echo "== mypy";        mypy
echo "== yamllint";    yamllint -s .
echo "== ansible-lint"; ansible-lint --profile production --offline src/ansible_collections/govbaseline/baseline
echo "== pytest"
# Two workers: lab tests wait on hosts much of the time, so two run side by side in about the time
# of one. Tests sharing a lab stay in one worker (tests/conftest.py). GOVBASELINE_TEST_WORKERS=0
# runs everything in this process.
pytest -n "${GOVBASELINE_TEST_WORKERS:-2}" --dist loadgroup --no-loadscope-reorder "$@"
if [ "${GOVBASELINE_SKIP_LAB:-0}" != "1" ]; then
  # The scenarios side by side: each makes its own lab (molecule-<scenario>) and most of their time
  # is waiting on hosts. Each one's output is printed whole when both are done.
  echo "== molecule (firewall and tls scenarios, each on its own lab host)"
  logs=$(mktemp -d)
  declare -A running
  for scenario in firewall tls; do
    molecule test -s "$scenario" > "$logs/$scenario.log" 2>&1 &
    running[$scenario]=$!
  done
  # Interrupted, the scenarios stop too (background jobs of a script ignore Ctrl-C).
  trap 'kill "${running[@]}" 2>/dev/null || true; wait || true; rm -rf "$logs"' EXIT
  failed=""
  for scenario in firewall tls; do
    wait "${running[$scenario]}" || failed="$failed $scenario"
    echo "== molecule $scenario"
    cat "$logs/$scenario.log"
  done
  if [ -n "$failed" ]; then
    echo "molecule failed:$failed" >&2
    exit 1
  fi
fi
