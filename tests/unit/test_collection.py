"""The product as others install it: the Ansible collection govbaseline.baseline built by
ansible-galaxy, and the wheel installed without the checkout (issue 19, parts 1 and 2)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from govbaseline.inventory import tool
from govbaseline.paths import COLLECTION_DIR, PLAYBOOKS_DIR, ROLES_DIR
from tests.paths import ROOT

ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "tasks" / "main.yml").is_file())
MODULES = ("first_run", "govbaseline_files", "govbaseline_validate", "nftables_table", "timer_schedule")
PLAYBOOKS = ("site", "firewall", "approve", "restore")


def test_the_collection_declares_the_package_version_and_ansible_core_range():
    galaxy = yaml.safe_load((COLLECTION_DIR / "galaxy.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (galaxy["namespace"], galaxy["name"]) == ("govbaseline", "baseline")
    assert galaxy["version"] == project["version"], "galaxy.yml and pyproject.toml name different versions"
    core = next(d for d in project["dependencies"] if d.startswith("ansible-core"))
    runtime = yaml.safe_load((COLLECTION_DIR / "meta" / "runtime.yml").read_text())
    lowest = next(s.version for s in SpecifierSet(core.removeprefix("ansible-core")) if s.operator == ">=")
    assert runtime["requires_ansible"].startswith(">=") and \
        Version(runtime["requires_ansible"][2:]) == Version(lowest), \
        f"meta/runtime.yml requires_ansible {runtime['requires_ansible']!r}, pyproject.toml {core!r}"


def test_ansible_galaxy_builds_the_collection_with_its_roles_modules_and_playbooks(tmp_path):
    # From a copy: a build reads the whole folder, and caches another test left there must not count.
    source = tmp_path / "ansible_collections" / "govbaseline" / "baseline"
    shutil.copytree(COLLECTION_DIR, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "plugins" / "modules" / "__pycache__").mkdir()
    (source / "plugins" / "modules" / "__pycache__" / "stale.cpython-311.pyc").write_bytes(b"")
    out = tmp_path / "dist"
    proc = subprocess.run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(out), str(source)],
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    artefact = out / "govbaseline-baseline-0.1.0.tar.gz"
    with tarfile.open(artefact) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    assert manifest["collection_info"]["name"] == "baseline"
    wanted = {"meta/runtime.yml", "README.md", "CHANGELOG.md", "requirements.txt",
              "plugins/action/govbaseline_files.py", "plugins/action/govbaseline_validate.py",
              "plugins/filter/govbaseline_filters.py", "playbooks/group_vars/all.yml",
              *(f"plugins/modules/{m}.py" for m in MODULES), *(f"playbooks/{p}.yml" for p in PLAYBOOKS),
              *(f"roles/{r}/{part}" for r in ROLES for part in ("tasks/main.yml", "defaults/main.yml",
                                                                   "meta/argument_specs.yml"))}
    assert not wanted - names, f"missing from the artefact: {sorted(wanted - names)}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")], "caches went into the artefact"
    templates = {str(p.relative_to(COLLECTION_DIR)) for p in ROLES_DIR.glob("*/templates/*.j2")}
    assert templates and not templates - names


# Run inside a venv that holds the wheel's files only (its dependencies come from this venv, added
# after them): govbaseline finds its collection, settings and data there, never in the checkout.
PROBE = textwrap.dedent("""
    import json, sys
    from govbaseline import pages, paths, templating, validation
    from govbaseline.deploys import nftables, timers
    from govbaseline.lab import podman
    files = [paths.ANSIBLE_CFG, paths.CATALOGUE_FILE, paths.CHECKS_DIR / "test_firewall.py", podman.CONTAINERS_CONF,
             paths.PLAYBOOKS_DIR / "site.yml", paths.PLAYBOOKS_DIR / "group_vars" / "all.yml",
             paths.MODULES_DIR / "nftables_table.py", paths.ROLES_DIR / "firewall" / "templates",
             paths.ROLES_DIR / "firewall" / "meta" / "argument_specs.yml"]
    # The report's page template, through the loader the reports use.
    files.append(paths.Path(pages.environment().get_template("report.html.j2").filename))
    print(json.dumps({"files": {str(f): f.exists() for f in files},
                      "modules": [nftables.NFT.__file__, timers.TIMER.__file__],
                      "roles": validation.baseline_roles(),
                      "managed": templating.shared_vars()["ansible_managed"]}))
""")


def test_the_wheel_installed_without_the_checkout_finds_everything(tmp_path):
    staged = tmp_path / "project"
    staged.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", staged)
    shutil.copytree(ROOT / "src", staged / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    # The venv's own setuptools, no download: the wheel is what `pip install govbaseline` would get.
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(tmp_path / "dist"), str(staged)],
                           capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("govbaseline-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                              str(site), str(wheel)], capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr
    # This venv's site-packages for the dependencies only: a path line in a .pth file adds the
    # folder, but not the .pth files inside it (the editable install's src/ stays out).
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    probe = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=False, cwd=tmp_path, env=env)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert all(found["files"].values()), f"missing in the installed package: {found['files']}"
    assert all(f.startswith(str(site)) for f in [*found["files"], *found["modules"]]), found
    # site.yml names the roles by their full names; the engines work with the roles' own names.
    assert found["roles"][:3] == ["backup_server", "pull", "firewall"], found["roles"]
    assert found["managed"].startswith("Managed by govbaseline")

    # ansible-core finds the collection in site-packages with no setting (collections_scan_sys_path).
    doc = subprocess.run([python, "-m", "ansible.cli.doc", "-t", "module", "--json",
                          "govbaseline.baseline.nftables_table"],
                         capture_output=True, text=True, check=False, cwd=tmp_path, env=env)
    assert doc.returncode == 0, doc.stderr
    assert json.loads(doc.stdout)["govbaseline.baseline.nftables_table"]["doc"]["filename"].startswith(str(site))

    # The OSCAL export is the extra govbaseline[oscal] (installed in this venv); it reads the installed catalogue.
    (metadata,) = site.glob("govbaseline-*.dist-info/METADATA")
    assert "Provides-Extra: oscal" in metadata.read_text()
    oscal = subprocess.run([python, "-m", "govbaseline", "oscal", "catalog", "-o", "catalog.json"],
                           capture_output=True, text=True, check=False, cwd=tmp_path, env=env)
    assert oscal.returncode == 0, oscal.stderr
    assert "bureau-of-mines-security-measures_measures.1" in (tmp_path / "catalog.json").read_text()

    # A team's own playbook, outside the checkout, uses the roles by their full names.
    (tmp_path / "team.yml").write_text(yaml.safe_dump([{
        "name": "The team's web servers", "hosts": "webservers",
        "roles": [{"role": "govbaseline.baseline.firewall"}, {"role": "govbaseline.baseline.tls"}]}]))
    for playbook in ("team.yml", "govbaseline.baseline.site"):
        check = subprocess.run([python, "-m", "ansible.cli.playbook", "-i", "localhost,", "--syntax-check", playbook],
                               capture_output=True, text=True, check=False, cwd=tmp_path, env=env)
        assert check.returncode == 0, check.stdout + check.stderr


def test_the_checkout_reads_the_collection_it_ships():
    assert PLAYBOOKS_DIR.is_relative_to(ROOT / "src" / "ansible_collections")
    assert (ROOT / "ansible.cfg").resolve() == (ROOT / "src" / "govbaseline" / "ansible.cfg")
