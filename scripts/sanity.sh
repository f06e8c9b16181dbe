#!/usr/bin/env bash
# ansible-test sanity on the collection, every test that runs without containers (--venv).
#
# ansible-test builds a virtual environment per test and installs pip into it with pypa's get-pip
# script, which it downloads from ci-files.testing.ansible.com. Where only PyPI is reachable, this
# writes that script's stand-in into ansible-test's cache (the path it reads before downloading):
# the same pip version's wheel from PyPI, installed the way get-pip installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

python=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# The pip version ansible-test puts in its environments for this Python (ansible-test's internal
# function, the one its own bootstrap calls; it reads only the Python version).
pip_version=$(python -c "from types import SimpleNamespace
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(SimpleNamespace(version='$python'))['pip'])")
cache="$HOME/.ansible/test/cache"
script="$cache/get_pip_${pip_version//./_}.py"
wheel="$cache/pip-$pip_version-py3-none-any.whl"
if [[ ! -s "$script" || ! -s "$wheel" ]]; then
    mkdir -p "$cache"
    pip download --quiet --no-deps --only-binary :all: --dest "$cache" "pip==$pip_version" || {
        echo "sanity: could not fetch pip $pip_version from PyPI for ansible-test's environments" >&2; exit 1; }
    cat > "$script.tmp" <<PY
"""Stand-in for pypa's get-pip.py $pip_version (written by govbaseline's scripts/sanity.sh):
installs pip from PyPI's wheel beside it, with the arguments ansible-test gives get-pip."""
import os
import sys

WHEEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pip-$pip_version-py3-none-any.whl")
sys.path.insert(0, WHEEL)
from pip._internal.cli.main import main  # noqa: E402

# --no-setuptools and --no-wheel are get-pip's own options, not pip's.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--force-reinstall", *args]))
PY
    mv "$script.tmp" "$script"
fi

cd src/ansible_collections/govbaseline/baseline
exec ansible-test sanity --venv --python "$python" --color no "$@"
