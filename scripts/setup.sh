#!/usr/bin/env bash
# Install everything govbaseline needs on a fresh Debian 12/13 machine, as root:
# Debian packages (podman with runc, debootstrap), a project venv with the Python tools,
# and the lab host image (built once with debootstrap, then cached).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (podman lab hosts and debootstrap need it)" >&2
  exit 1
fi

packages=(podman runc netavark aardvark-dns iptables debootstrap nftables iproute2 openssh-client
          python3-venv git ca-certificates
          auditd sudo aide  # the unit tests load the audit rules, check sudoers and AIDE rules here
          chromium-headless-shell  # prints report.pdf (verify --pdf); a lab test renders report.html in it
          poppler-utils tesseract-ocr  # the PDF tests turn its pages into images and read them (OCR)
          qemu-system-x86 qemu-utils)  # VM lab hosts (lab up --vm): a kernel of their own
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[dev,oscal]'  # oscal: tests/unit/test_oscal.py validates the exports

# Both releases' images are built at once (debootstrap mostly waits on downloads): the Debian 12
# lab test would otherwise build its image on its own, in the middle of the suite.
images_log=$(mktemp)
.venv/bin/govbaseline lab image --distro debian12 >"$images_log" 2>&1 &
debian12=$!
echo "setup: lab image $(.venv/bin/govbaseline lab image)"
if ! wait "$debian12"; then
  cat "$images_log" >&2
  exit 1
fi
echo "setup: lab image $(tail -1 "$images_log")"
rm -f "$images_log"
# The VM hosts' disk, kernel and initramfs, made from the Debian 13 image (about a minute, cached).
disk=$(.venv/bin/govbaseline lab image --vm)  # a failed build stops setup here (set -e)
echo "setup: lab VM disk $disk"
